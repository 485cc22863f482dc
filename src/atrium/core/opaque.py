"""Opaque bearer secrets kept only as digests: refresh tokens and emailed tokens.

A token is 256 random bits (``secrets.token_urlsafe(32)``, 43 URL-safe base64
characters); the database stores only its SHA-256 digest. With that much entropy a fast
hash is enough: there is nothing to guess offline (OWASP Session Management and Forgot
Password Cheat Sheets; RFC 9700 §4.14 for refresh tokens).
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def token_digest(raw: str) -> bytes:
    """The SHA-256 digest (32 bytes) of ``raw``, as stored and looked up."""
    return hashlib.sha256(raw.encode()).digest()
