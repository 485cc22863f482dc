"""Password hashes as other systems make them, for import tests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import argon2
import bcrypt

PASSWORD = "imported passphrase 1"


def bcrypt_hash(password: str = PASSWORD) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def argon2id_weak(password: str = PASSWORD) -> str:
    """argon2id with parameters below the test settings' (m=1024, t=1): to be upgraded."""
    return argon2.PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(password)


def argon2i(password: str = PASSWORD) -> str:
    return argon2.PasswordHasher(
        time_cost=2, memory_cost=1024, parallelism=1, type=argon2.Type.I
    ).hash(password)


def django_pbkdf2(password: str = PASSWORD, iterations: int = 1000) -> str:
    """Django's ``pbkdf2_sha256$<iterations>$<salt>$<base64 key>`` (PBKDF2PasswordHasher)."""
    salt = "sQ3mWcTfXyZa"
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations, 32)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(key).decode()}"


def keycloak_pbkdf2(password: str = PASSWORD, iterations: int = 1000) -> dict[str, Any]:
    """A Keycloak realm export's password credential (pbkdf2-sha256, 512-bit key)."""
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 64)
    return {
        "type": "password",
        "secretData": json.dumps(
            {
                "value": base64.b64encode(key).decode(),
                "salt": base64.b64encode(salt).decode(),
                "additionalParameters": {},
            }
        ),
        "credentialData": json.dumps(
            {"hashIterations": iterations, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}
        ),
    }


def keycloak_argon2(password: str = PASSWORD) -> dict[str, Any]:
    """A Keycloak (24+) argon2 credential: raw hash and salt, parameters apart."""
    salt = os.urandom(16)
    key = argon2.low_level.hash_secret_raw(
        password.encode(), salt, time_cost=1, memory_cost=512, parallelism=1, hash_len=32,
        type=argon2.Type.ID,
    )  # fmt: skip
    params = {
        "hashLength": ["32"],
        "memory": ["512"],
        "type": ["id"],
        "version": ["1.3"],
        "iterations": ["1"],
        "parallelism": ["1"],
    }
    return {
        "type": "password",
        "secretData": json.dumps(
            {"value": base64.b64encode(key).decode(), "salt": base64.b64encode(salt).decode()}
        ),
        "credentialData": json.dumps(
            {"hashIterations": 1, "algorithm": "argon2", "additionalParameters": params}
        ),
    }
