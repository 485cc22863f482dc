"""Encryption of TOTP secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) under a :class:`~cryptography.fernet.MultiFernet` of the keys in
``mfa.encryption_keys``.

Rotation (docs/security.md, "Rotating the MFA encryption key"): put a new key *first* in
``mfa.encryption_keys`` and keep the old ones after it (the first key encrypts, every key
decrypts), restart, run ``atrium mfa rotate-keys`` (re-encrypts every secret under the
first key; :func:`rotate_all`), then remove the old keys. Without any configured key, a
key is derived from the token signing key with HKDF-SHA256, so it is stable across
restarts and shared by every node that shares the signing key; set explicit keys in
production, or a signing-key rotation would make the secrets unreadable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.config import Settings
from atrium.core.tokens import load_or_create_signing_key
from atrium.models import MfaFactor


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def derived_key(settings: Settings) -> bytes:
    """The Fernet key derived from the signing key (HKDF-SHA256, info ``atrium mfa``)."""
    private = load_or_create_signing_key(settings).private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"atrium mfa")
    return base64.urlsafe_b64encode(hkdf.derive(private))


class SecretBox:
    """Encrypts and decrypts secrets with the configured keys (first key encrypts)."""

    def __init__(self, settings: Settings) -> None:
        """Raises:
        ValueError: a configured key is not a Fernet key (urlsafe base64 of 32 bytes).
        """
        keys = [k.get_secret_value().encode() for k in settings.mfa.encryption_keys]
        if not keys:
            keys = [derived_key(settings)]
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Raises:
        SecretUnreadable: no configured key decrypts ``token``.
        """
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("no configured key decrypts this secret") from exc

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key (MultiFernet.rotate)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("no configured key decrypts this secret") from exc


async def rotate_all(db: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every stored TOTP secret under the first key; the number re-encrypted.

    Raises:
        SecretUnreadable: a secret is readable by none of the keys (nothing is changed
            when the caller rolls back).
    """
    factors = (
        await db.execute(select(MfaFactor).where(MfaFactor.secret_encrypted.is_not(None)))
    ).scalars()
    count = 0
    for factor in factors:
        assert factor.secret_encrypted is not None
        factor.secret_encrypted = box.rotate(factor.secret_encrypted)
        count += 1
    await db.flush()
    return count
