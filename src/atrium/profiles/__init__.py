"""Profiles, preferences, privacy and avatars."""
