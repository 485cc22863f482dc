"""Hashes of other systems: recognised, normalised, verified against published vectors."""

from __future__ import annotations

import base64

import pytest

from atrium.config import AuthSettings
from atrium.core.legacy_hashes import (
    Pbkdf2Hasher,
    UnsupportedHash,
    keycloak_credential_hash,
    normalize_hash,
)
from atrium.core.passwords import PasswordHasher

# RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64.
RFC7914_KEY = bytes.fromhex(
    "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
    "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
)


def test_django_pbkdf2_sha256_verifies_against_the_rfc_7914_vector() -> None:
    stored = f"pbkdf2_sha256$1$salt${base64.b64encode(RFC7914_KEY).decode()}"
    assert normalize_hash(stored) == stored
    assert Pbkdf2Hasher().verify("passwd", stored)
    assert not Pbkdf2Hasher().verify("passwd!", stored)


def test_keycloak_pbkdf2_credential_becomes_a_verifiable_hash() -> None:
    stored = keycloak_credential_hash(
        {
            "value": base64.b64encode(RFC7914_KEY).decode(),
            "salt": base64.b64encode(b"salt").decode(),
        },
        '{"hashIterations": 1, "algorithm": "pbkdf2-sha256"}',
    )
    assert stored.startswith("$pbkdf2-sha256$1$")
    assert Pbkdf2Hasher.identify(stored)
    assert Pbkdf2Hasher().verify("passwd", stored)


@pytest.mark.parametrize(
    ("django", "stored"),
    [
        (
            "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$3xzMv7ZxJq3Wj1/7UGW6Dw",
            "$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$3xzMv7ZxJq3Wj1/7UGW6Dw",
        ),
        (
            "bcrypt$$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ),
    ],
)
def test_django_prefixes_are_removed(django: str, stored: str) -> None:
    assert normalize_hash(django) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "5f4dcc3b5aa765d61d8327deb882cf99",  # unsalted MD5
        "bcrypt_sha256$$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "pbkdf2_sha256$0$salt$AAAA",
        "$2b$12$short",
        "",
    ],
)
def test_unverifiable_hashes_are_refused(raw: str) -> None:
    with pytest.raises(UnsupportedHash):
        normalize_hash(raw)


def test_keycloak_credential_of_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(UnsupportedHash):
        keycloak_credential_hash({"value": "AAAA", "salt": "AAAA"}, {"algorithm": "md5"})


async def test_password_hasher_upgrades_a_pbkdf2_hash_to_argon2id() -> None:
    hasher = PasswordHasher(AuthSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1))
    try:
        stored = f"pbkdf2_sha256$1$salt${base64.b64encode(RFC7914_KEY).decode()}"
        ok, new_hash = await hasher.verify("passwd", stored)
        assert ok
        assert new_hash is not None
        assert new_hash.startswith("$argon2id$")
        assert (await hasher.verify("wrong", stored)) == (False, None)
    finally:
        hasher.close()
