"""Signing-key rotation with verification keys: the overlap of docs/operations.md, node by
node (each "node" is an app on the same database with its own key settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from pydantic import SecretStr

from atrium.config import AuthSettings, Settings
from atrium.core.tokens import SigningKey, VerificationKey, load_verification_keys
from atrium.main import create_app
from tests.conftest import FAST_ARGON2
from tests.factories import login, register

ME = "/api/v1/users/me"
JWKS = "/.well-known/jwks.json"
EMAIL = "ada@example.com"

Node = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def _public_pem(key: SigningKey) -> str:
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture
def node(settings: Settings, app_ctx: object) -> Node:
    """Start a node; ``app_ctx`` is requested for its clean-up of the shared database."""

    @asynccontextmanager
    async def start(
        signing: SigningKey, *verifying: str, files: list[Path] | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        auth = AuthSettings(
            **FAST_ARGON2,
            signing_key=SecretStr(signing.private_pem().decode()),
            verification_keys=[SecretStr(pem) for pem in verifying],
            verification_key_files=files or [],
        )
        app = create_app(settings.model_copy(update={"auth": auth}))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
                yield c

    return start


async def _status(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get(ME, headers={"Authorization": f"Bearer {token}"})).status_code


async def test_a_rotation_in_three_steps_never_refuses_a_live_token(node: Node) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    async with node(old) as a:
        await register(a, EMAIL)
        old_token = (await login(a, EMAIL))["access_token"]

    # Step 1: the next key is published on every node; nothing signs with it yet.
    async with node(old, _public_pem(new)) as a:
        jwks = (await a.get(JWKS)).json()
        assert [k["kid"] for k in jwks["keys"]] == [old.kid, new.kid]
        assert await _status(a, old_token) == 200

    # Step 2: the new key signs, the old one verifies: tokens of either pass everywhere.
    async with node(new, _public_pem(old)) as b, node(old, _public_pem(new)) as a:
        new_token = (await login(b, EMAIL))["access_token"]
        assert await _status(b, old_token) == 200
        assert await _status(a, new_token) == 200  # a node not yet restarted

    # Step 3: the old key is gone: its tokens are refused, the new ones still pass.
    async with node(new) as b:
        assert [k["kid"] for k in (await b.get(JWKS)).json()["keys"]] == [new.kid]
        assert await _status(b, old_token) == 401
        assert await _status(b, new_token) == 200


async def test_verification_keys_are_read_from_files(node: Node, tmp_path: Path) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    private_file, public_file = tmp_path / "old.pem", tmp_path / "other.pem"
    private_file.write_bytes(old.private_pem())  # a private key: only its public half is used
    other = SigningKey.generate()
    public_file.write_text(_public_pem(other))
    async with node(old) as a:
        await register(a, EMAIL)
        old_token = (await login(a, EMAIL))["access_token"]

    async with node(new, files=[private_file, public_file]) as b:
        keys = (await b.get(JWKS)).json()["keys"]
        assert [k["kid"] for k in keys] == [new.kid, old.kid, other.kid]
        assert all(set(k) == {"kty", "crv", "x", "kid", "alg", "use"} for k in keys)
        assert await _status(b, old_token) == 200


async def test_the_signing_key_listed_again_as_a_verification_key_is_published_once(
    node: Node,
) -> None:
    key = SigningKey.generate()
    async with node(key, _public_pem(key)) as a:
        assert [k["kid"] for k in (await a.get(JWKS)).json()["keys"]] == [key.kid]


def test_public_and_private_pem_give_the_same_key() -> None:
    key = SigningKey.generate()
    from_public = VerificationKey.from_pem(_public_pem(key).encode())
    from_private = VerificationKey.from_pem(key.private_pem())
    assert from_public.kid == from_private.kid == key.kid
    assert from_public.public_jwk == key.public_jwk


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"not a key",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    ],
    ids=["empty", "text", "truncated", "rsa"],
)
def test_a_key_that_is_not_ed25519_is_refused(pem: bytes) -> None:
    with pytest.raises(ValueError, match="not an Ed25519 PEM"):
        VerificationKey.from_pem(pem)


def test_a_bad_or_missing_key_file_stops_start_up_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    for path in (bad, tmp_path / "missing.pem"):
        auth = AuthSettings(**FAST_ARGON2, verification_key_files=[path])
        with pytest.raises(ValueError, match=str(path)):
            load_verification_keys(settings.model_copy(update={"auth": auth}))
    auth = AuthSettings(**FAST_ARGON2, verification_keys=[SecretStr("not a key")])
    with pytest.raises(ValueError, match=r"ATRIUM_AUTH__VERIFICATION_KEYS\[0\]"):
        load_verification_keys(settings.model_copy(update={"auth": auth}))
