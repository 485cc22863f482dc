"""Authentication: registration, login, refresh-token rotation, sessions and principals."""
