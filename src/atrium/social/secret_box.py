"""Client secrets of the providers stored by the admin API, encrypted at rest.

Fernet (AES-128-CBC + HMAC-SHA256, ``cryptography``) with a :class:`MultiFernet` over
``social.secret_keys``: the first key encrypts, every key decrypts, so a key is rotated by
putting the new one first (and ``atrium`` re-encrypts nothing until a secret is written
again; keep the old key listed until then). Without configured keys, outside production,
a key file ``<data_dir>/social_secret.key`` is made on first use (mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from atrium.config import Environment, Settings
from atrium.social.exceptions import SecretKeyMissing

KEY_FILE = "social_secret.key"


def _key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def secret_box(settings: Settings, *, create: bool) -> MultiFernet | None:
    """The MultiFernet of the configured keys, or of the key file. ``create`` makes the key
    file when there is none (development and test only).

    Raises:
        SecretKeyMissing: 409, production without ``social.secret_keys``.
    """
    keys = [k.get_secret_value().encode() for k in settings.social.secret_keys]
    if not keys:
        path = _key_file(settings)
        if path.exists():
            keys = [path.read_bytes().strip()]
        elif not create:
            return None
        elif settings.environment is Environment.production:
            raise SecretKeyMissing("Set ATRIUM_SOCIAL__SECRET_KEYS to store client secrets.")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key)
            keys = [key]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt_secret(settings: Settings, secret: str) -> bytes:
    """Fernet token of ``secret`` under the first key."""
    box = secret_box(settings, create=True)
    assert box is not None
    return box.encrypt(secret.encode())


def decrypt_secret(settings: Settings, token: bytes) -> str | None:
    """The secret, or None when no configured key opens it (a removed key)."""
    box = secret_box(settings, create=False)
    if box is None:
        return None
    try:
        return box.decrypt(token).decode()
    except InvalidToken:
        return None
