"""The signed-in user's own account: profile basics, password, sessions, deletion."""
