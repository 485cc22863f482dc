"""API keys (personal access tokens): their format, checksum and stored digest.

A key is ``atr_pat_`` + 256 random bits in base62 (43 characters, fixed width) + the
CRC32 of those 43 characters in base62 (6 characters, fixed width): 57 characters, for
example ``atr_pat_3x9...Qa1bC2``. The prefix and the checksum make a leaked key
recognisable by a secret scanner without any database lookup (the scheme of GitHub's
token format), and let Atrium refuse a mistyped or forged key before touching the cache
or the database.

The database stores only ``HMAC-SHA256(server secret, key)``: with 256 bits of entropy a
fast keyed hash suffices (nothing to guess offline), and a stolen table is useless
without the secret (OWASP Secrets Management Cheat Sheet; NIST SP 800-63B §5.1.1.2 for
the keyed hash of a stored verifier).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

PREFIX = "atr_pat_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 43  # ceil(256 / log2(62))
CHECKSUM_LENGTH = 6  # ceil(32 / log2(62))
KEY_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
DISPLAY_PREFIX_LENGTH = len(PREFIX) + 8
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def _base62(value: int, width: int) -> str:
    """``value`` in base62, left-padded with ``0`` to ``width`` characters."""
    out = []
    while value:
        value, digit = divmod(value, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out)).rjust(width, "0")


def checksum(body: str) -> str:
    """The 6-character base62 CRC32 (ISO-HDLC, ``zlib.crc32``) of ``body``."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    """A fresh API key (57 characters, 256 random bits from ``secrets``)."""
    body = _base62(int.from_bytes(secrets.token_bytes(32), "big"), BODY_LENGTH)
    return PREFIX + body + checksum(body)


def looks_like_api_key(token: str) -> bool:
    """True when ``token`` carries the API key prefix (whether or not it is well formed)."""
    return token.startswith(PREFIX)


def is_well_formed(key: str) -> bool:
    """True when ``key`` has the prefix, the exact length, only base62 characters and a
    matching checksum. No I/O: this is what a secret scanner can check too."""
    if len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    body = key[len(PREFIX) : len(PREFIX) + BODY_LENGTH]
    if any(c not in _INDEX for c in key[len(PREFIX) :]):
        return False
    return hmac.compare_digest(key[len(PREFIX) + BODY_LENGTH :], checksum(body))


def digest(key: str, secret: bytes) -> bytes:
    """``HMAC-SHA256(secret, key)`` (32 bytes), as stored and looked up (RFC 2104)."""
    return hmac.new(secret, key.encode("ascii"), hashlib.sha256).digest()


def display_prefix(key: str) -> str:
    """The part of ``key`` shown in lists so its owner can tell keys apart
    (``atr_pat_`` and 8 characters: 47 bits, not enough to use or guess the key)."""
    return key[:DISPLAY_PREFIX_LENGTH]
