"""Password hashes made by other systems: recognised, stored as they are, verified, upgraded.

Imported accounts keep the hash their previous system made, so users keep their password;
the first successful login replaces it with Atrium's argon2id (``PasswordHasher.verify``
answers a new hash for every hash that is not argon2id with the current parameters).

Stored forms (what :func:`normalize_hash` answers):

- bcrypt: the modular crypt string, ``$2a$``/``$2b$``/``$2y$`` (Auth0, Supabase,
  fastapi-users with passlib, Django's ``bcrypt$`` once its prefix is removed).
- argon2: the PHC string ``$argon2id$v=19$m=…,t=…,p=…$salt$hash`` (also ``argon2i`` and
  ``argon2d``; Django's ``argon2$`` prefix is removed; Keycloak's argon2 credentials are
  rebuilt into it by :func:`keycloak_credential_hash`).
- PBKDF2 (RFC 8018 §5.2, HMAC-SHA-256/512/1): Django's own string
  ``pbkdf2_sha256$<iterations>$<salt>$<base64 derived key>`` (the salt is text, used as
  its UTF-8 bytes) is kept as is; binary salts (Keycloak) are stored in passlib's
  modular crypt form ``$pbkdf2-sha256$<iterations>$<ab64 salt>$<ab64 derived key>``
  (``ab64``: base64 with ``.`` for ``+`` and no padding).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import HasherProtocol, ensure_str
from pwdlib.hashers.bcrypt import BcryptHasher

# Django's PBKDF2 algorithms (django.contrib.auth.hashers) and their digests.
_DJANGO_PBKDF2 = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}
# passlib's modular crypt identifiers (passlib.hash.pbkdf2_sha256 ...).
_MCF_PBKDF2 = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512", "pbkdf2": "sha1"}
# Keycloak's credential algorithms (PasswordHashProvider ids).
_KEYCLOAK_PBKDF2 = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512", "pbkdf2": "sha1"}
_MAX_ITERATIONS = 10_000_000
_DJANGO_RE = re.compile(
    r"^(pbkdf2_sha256|pbkdf2_sha1)\$(\d{1,8})\$([^$]{1,128})\$([A-Za-z0-9+/=]+)$"
)
_MCF_RE = re.compile(
    r"^\$(pbkdf2-sha256|pbkdf2-sha512|pbkdf2)\$(\d{1,8})\$([A-Za-z0-9./]+)\$([A-Za-z0-9./]+)$"
)


class UnsupportedHash(ValueError):
    """A password hash of a scheme Atrium cannot verify, or a malformed one."""


def _ab64_encode(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=").replace("+", ".")


def _ab64_decode(text: str) -> bytes:
    padded = text.replace(".", "+") + "=" * (-len(text) % 4)
    return base64.b64decode(padded, validate=True)


def _b64_nopad(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _pbkdf2_parts(hash_text: str) -> tuple[str, int, bytes, bytes] | None:
    """(digest name, iterations, salt, derived key) of a stored PBKDF2 hash, else None."""
    m = _DJANGO_RE.match(hash_text)
    if m:
        try:
            key = base64.b64decode(m.group(4), validate=True)
        except binascii.Error:
            return None
        return _DJANGO_PBKDF2[m.group(1)], int(m.group(2)), m.group(3).encode(), key
    m = _MCF_RE.match(hash_text)
    if m:
        try:
            salt, key = _ab64_decode(m.group(3)), _ab64_decode(m.group(4))
        except binascii.Error:
            return None
        return _MCF_PBKDF2[m.group(1)], int(m.group(2)), salt, key
    return None


class Pbkdf2Hasher(HasherProtocol):
    """Verifies PBKDF2 hashes (RFC 8018) of Django and passlib/Keycloak; never makes them:
    every PBKDF2 hash needs a rehash into argon2id (OWASP Password Storage Cheat Sheet)."""

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        try:
            return _pbkdf2_parts(ensure_str(hash)) is not None
        except UnicodeDecodeError:
            return False

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        raise NotImplementedError("PBKDF2 hashes are only verified; new hashes are argon2id")

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        parts = _pbkdf2_parts(ensure_str(hash))
        if parts is None:
            return False
        digest, iterations, salt, expected = parts
        if not 0 < iterations <= _MAX_ITERATIONS or not expected:
            return False
        raw = password.encode() if isinstance(password, str) else password
        derived = hashlib.pbkdf2_hmac(digest, raw, salt, iterations, dklen=len(expected))
        return hmac.compare_digest(derived, expected)

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        return True


def normalize_hash(raw: str) -> str:
    """The stored form of a password hash exported by another system.

    Accepts bcrypt, argon2 (PHC string), Django's ``pbkdf2_sha256$``, ``pbkdf2_sha1$``,
    ``argon2$`` and ``bcrypt$`` strings, and passlib's ``$pbkdf2-sha256$`` family.

    Raises:
        UnsupportedHash: any other scheme (e.g. unsalted MD5/SHA-1, Django's
            ``bcrypt_sha256$``), or a malformed hash.
    """
    value = raw.strip()
    if value.startswith("argon2$argon2"):
        value = value[len("argon2") :]
    elif value.startswith("bcrypt$$2"):
        value = value[len("bcrypt$") :]
    if BcryptHasher.identify(value) or Argon2Hasher.identify(value):
        return value
    parts = _pbkdf2_parts(value)
    if parts is not None:
        if not 0 < parts[1] <= _MAX_ITERATIONS:
            raise UnsupportedHash(f"PBKDF2 iteration count out of range (1-{_MAX_ITERATIONS})")
        return value
    scheme = value.split("$", 2)[1] if value.startswith("$") else value.split("$", 1)[0]
    raise UnsupportedHash(f"unsupported or malformed password hash (scheme {scheme[:24]!r})")


def _first(params: dict[str, Any], name: str, default: str) -> str:
    value = params.get(name, default)
    # Keycloak writes additionalParameters as {"name": ["value"]}.
    if isinstance(value, list):
        value = value[0] if value else default
    return str(value)


def keycloak_credential_hash(
    secret_data: str | dict[str, Any], credential_data: str | dict[str, Any]
) -> str:
    """The stored form of a Keycloak password credential (realm export,
    ``users[].credentials[]`` with ``type: password``).

    ``secretData`` holds ``value`` (base64 derived key) and ``salt`` (base64);
    ``credentialData`` holds ``algorithm`` (``pbkdf2-sha256``, ``pbkdf2-sha512``,
    ``pbkdf2``, ``argon2``), ``hashIterations`` and, for argon2, ``additionalParameters``
    (``type``, ``version``, ``memory`` in KiB, ``iterations``, ``parallelism``).

    Raises:
        UnsupportedHash: another algorithm, or fields missing or malformed.
    """
    try:
        secret = json.loads(secret_data) if isinstance(secret_data, str) else secret_data
        cred = json.loads(credential_data) if isinstance(credential_data, str) else credential_data
        key = base64.b64decode(secret["value"], validate=True)
        salt = base64.b64decode(secret["salt"], validate=True)
        algorithm = str(cred.get("algorithm", "pbkdf2-sha256"))
        iterations = int(cred.get("hashIterations", 0))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise UnsupportedHash(f"malformed Keycloak credential ({exc.__class__.__name__})") from None
    if not key or not salt:
        raise UnsupportedHash("Keycloak credential without a value or a salt")
    if algorithm in _KEYCLOAK_PBKDF2:
        if not 0 < iterations <= _MAX_ITERATIONS:
            raise UnsupportedHash("Keycloak credential with an iteration count out of range")
        ident = {"sha256": "pbkdf2-sha256", "sha512": "pbkdf2-sha512", "sha1": "pbkdf2"}
        scheme = ident[_KEYCLOAK_PBKDF2[algorithm]]
        return f"${scheme}${iterations}${_ab64_encode(salt)}${_ab64_encode(key)}"
    if algorithm == "argon2":
        params = cred.get("additionalParameters") or {}
        variant = _first(params, "type", "id")
        version = {"1.3": "19", "1.0": "16"}.get(_first(params, "version", "1.3"))
        if variant not in {"id", "i", "d"} or version is None:
            raise UnsupportedHash("Keycloak argon2 credential with an unknown type or version")
        memory = int(_first(params, "memory", "7168"))
        time_cost = int(_first(params, "iterations", "5"))
        parallelism = int(_first(params, "parallelism", "1"))
        return (
            f"$argon2{variant}$v={version}$m={memory},t={time_cost},p={parallelism}"
            f"${_b64_nopad(salt)}${_b64_nopad(key)}"
        )
    raise UnsupportedHash(f"unsupported Keycloak password algorithm {algorithm[:32]!r}")
