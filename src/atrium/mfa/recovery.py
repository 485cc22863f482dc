"""Recovery codes: look-up secrets (NIST SP 800-63B §5.1.2), ten per set, single use.

A code is 16 characters of the RFC 4648 base32 alphabet (80 random bits) shown in groups
of four (``ABCD-EFGH-IJKL-MNOP``); it is stored only as the SHA-256 digest of its
canonical form (upper case, no separators). With 80 bits a fast hash is enough: no
offline search can reach a preimage (as for refresh tokens). Input is forgiving: case,
spaces and dashes are ignored.
"""

from __future__ import annotations

import hashlib
import secrets

CODE_COUNT = 10
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_LENGTH = 16


def new_codes(count: int = CODE_COUNT) -> list[str]:
    """``count`` fresh codes, formatted for display."""
    out = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        out.append("-".join(raw[i : i + 4] for i in range(0, _LENGTH, 4)))
    return out


def canonical(code: str) -> str | None:
    """The canonical form of a typed code, or None when it cannot be one."""
    raw = code.upper().replace("-", "").replace(" ", "")
    if len(raw) != _LENGTH or any(c not in _ALPHABET for c in raw):
        return None
    return raw


def code_hash(code: str) -> bytes:
    """SHA-256 digest of a code's canonical form (as stored)."""
    raw = canonical(code)
    if raw is None:
        raise ValueError("not a recovery code")
    return hashlib.sha256(raw.encode()).digest()
