"""Passkeys (W3C WebAuthn Level 3): registering and managing an account's credentials,
and signing in with one, without a password (py_webauthn)."""
