"""Login through the API: the token response, uniform failures, timing parity between an
unknown email and a wrong password, legacy-hash upgrades and verification off the loop."""

from __future__ import annotations

import threading
import unicodedata
import uuid
from typing import Any

import bcrypt
import httpx
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.passwords import normalize_password
from atrium.models import User
from tests.factories import PASSWORD, login, register

URL = "/api/v1/auth/login"


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(URL, data={"username": username, "password": password})


async def _stored_hash(ctx: AppContext, user_id: str) -> str:
    async with ctx.sessionmaker() as db:
        return (
            await db.execute(select(User.password_hash).where(User.id == uuid.UUID(user_id)))
        ).scalar_one()


async def _set_hash(ctx: AppContext, user_id: str, password_hash: str) -> None:
    async with ctx.sessionmaker() as db:
        await db.execute(
            update(User).where(User.id == uuid.UUID(user_id)).values(password_hash=password_hash)
        )
        await db.commit()


def _bcrypt(password: bytes) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()


def _weaker_argon2(ctx: AppContext) -> Argon2Hasher:
    """An argon2id hasher whose parameters are all <= the settings', one strictly lower."""
    auth = ctx.settings.auth
    memory = auth.argon2_memory_cost_kib // 2
    assert memory >= 8 * auth.argon2_parallelism  # argon2's floor
    assert memory < auth.argon2_memory_cost_kib
    return Argon2Hasher(
        time_cost=auth.argon2_time_cost,
        memory_cost=memory,
        parallelism=auth.argon2_parallelism,
    )


def _count_verifications(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    original = ctx.hasher.verify_sync

    def counting(password: str, stored_hash: str) -> tuple[bool, str | None]:
        calls.append(threading.current_thread())
        return original(password, stored_hash)

    monkeypatch.setattr(ctx.hasher, "verify_sync", counting)
    return calls


# --- success -------------------------------------------------------------------------------


async def test_login_returns_bearer_token_pair(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    response = await _login(client, "ada@example.com", PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "acr",
        "amr",
        "auth_time",
    }
    assert (body["acr"], body["amr"]) == ("aal1", ["pwd"])
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert isinstance(body["access_token"], str)
    assert isinstance(body["refresh_token"], str)
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["access_token"] != body["refresh_token"]


async def test_login_access_token_authenticates_the_user(client: httpx.AsyncClient) -> None:
    created = await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )

    assert me.status_code == 200
    assert me.json()["id"] == created["id"]


@pytest.mark.parametrize(
    ("registered", "given"),
    [
        ("ada@example.com", "ADA@EXAMPLE.COM"),
        ("Ada@Example.COM", "ada@example.com"),
        ("ada@example.com", "Ada@Example.Com"),
    ],
)
async def test_login_with_differently_cased_email_succeeds(
    client: httpx.AsyncClient, registered: str, given: str
) -> None:
    await register(client, registered)

    response = await _login(client, given, PASSWORD)

    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_login_with_nfd_form_of_nfc_registered_email_succeeds(
    client: httpx.AsyncClient,
) -> None:
    await register(client, unicodedata.normalize("NFC", "josé@example.com"))

    response = await _login(client, unicodedata.normalize("NFD", "JOSÉ@example.com"), PASSWORD)

    assert response.status_code == 200


async def test_login_sets_last_login_at(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    created = await register(client, "ada@example.com")
    assert created["last_login_at"] is None
    clock.advance(minutes=5)

    await login(client, "ada@example.com")

    async with ctx.sessionmaker() as db:
        last_login = (
            await db.execute(select(User.last_login_at).where(User.id == uuid.UUID(created["id"])))
        ).scalar_one()
    assert last_login == clock.now()


# --- failures ------------------------------------------------------------------------------


async def test_login_wrong_password_is_401_invalid_credentials(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    response = await _login(client, "ada@example.com", "not the right password")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_login_unknown_email_is_401_invalid_credentials(client: httpx.AsyncClient) -> None:
    response = await _login(client, "nobody@example.com", PASSWORD)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_login_unknown_email_and_wrong_password_answer_identically(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")

    wrong_password = await _login(client, "ada@example.com", "not the right password")
    unknown_email = await _login(client, "nobody@example.com", PASSWORD)

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


async def test_login_unknown_email_runs_one_verification_like_a_wrong_password(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(client, "ada@example.com")
    calls = _count_verifications(ctx, monkeypatch)

    await _login(client, "ada@example.com", "not the right password")
    wrong_password = len(calls)
    calls.clear()
    await _login(client, "nobody@example.com", PASSWORD)
    unknown_email = len(calls)

    assert wrong_password == 1
    assert unknown_email == 1


async def test_login_malformed_email_runs_one_verification(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_verifications(ctx, monkeypatch)

    response = await _login(client, "not-an-email", PASSWORD)

    assert response.status_code == 401
    assert len(calls) == 1


@pytest.mark.parametrize(
    "username",
    ["not-an-email", "ada@@example.com", "ada lovelace@example.com", "@example.com", "ada@"],
)
async def test_login_malformed_email_is_401_invalid_credentials(
    client: httpx.AsyncClient, username: str
) -> None:
    response = await _login(client, username, PASSWORD)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def _suspend(ctx: AppContext, user_id: str) -> None:
    async with ctx.sessionmaker() as db:
        await db.execute(
            update(User).where(User.id == uuid.UUID(user_id)).values(status="suspended")
        )
        await db.commit()


async def test_login_suspended_user_with_the_right_password_is_403_account_suspended(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    await _suspend(ctx, created["id"])

    response = await _login(client, "ada@example.com", PASSWORD)

    assert response.status_code == 403
    assert response.json()["code"] == "account_suspended"
    assert "access_token" not in response.text


async def test_login_suspended_user_with_a_wrong_password_is_401_invalid_credentials(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    await _suspend(ctx, created["id"])

    response = await _login(client, "ada@example.com", "not the password at all")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_login_json_body_instead_of_form_is_422(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    response = await client.post(URL, json={"username": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_login_missing_password_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, data={"username": "ada@example.com"})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert [err["loc"] for err in body["errors"]] == [["body", "password"]]


async def test_login_validation_error_never_echoes_the_password(
    client: httpx.AsyncClient,
) -> None:
    secret = "Zq9-unique-secret-value-7Tx"

    response = await client.post(URL, data={"password": secret * 50})

    assert response.status_code == 422
    assert secret not in response.text


# --- hash upgrades -------------------------------------------------------------------------


async def test_login_accepts_a_stored_bcrypt_hash_and_rehashes_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    legacy = _bcrypt(PASSWORD.encode())
    await _set_hash(ctx, created["id"], legacy)

    response = await _login(client, "ada@example.com", PASSWORD)
    stored = await _stored_hash(ctx, created["id"])

    assert response.status_code == 200
    assert response.json()["access_token"]
    assert stored != legacy
    assert stored.startswith("$argon2id$")


async def test_login_replaces_a_bcrypt_hash_with_argon2id(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    await _set_hash(ctx, created["id"], _bcrypt(PASSWORD.encode()))

    await login(client, "ada@example.com")

    assert (await _stored_hash(ctx, created["id"])).startswith("$argon2id$")


async def test_login_upgraded_bcrypt_hash_still_verifies_the_password(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    await _set_hash(ctx, created["id"], _bcrypt(PASSWORD.encode()))
    await login(client, "ada@example.com")

    again = await _login(client, "ada@example.com", PASSWORD)
    wrong = await _login(client, "ada@example.com", "not the right password")

    assert again.status_code == 200
    assert wrong.status_code == 401


async def test_login_bcrypt_hash_rejects_a_wrong_password(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    await _set_hash(ctx, created["id"], _bcrypt(PASSWORD.encode()))

    response = await _login(client, "ada@example.com", "not the right password")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_login_bcrypt_hash_of_password_over_72_bytes_verifies_with_full_password(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    long_password = "correct horse battery staple " * 4  # 116 bytes
    assert len(long_password.encode()) > 72
    created = await register(client, "ada@example.com", long_password)
    # Older bcrypt libraries silently hashed only the first 72 bytes.
    await _set_hash(ctx, created["id"], _bcrypt(long_password.encode()[:72]))

    response = await _login(client, "ada@example.com", long_password)

    assert response.status_code == 200


async def test_login_bcrypt_hash_of_long_password_upgrade_keeps_full_password(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    long_password = "correct horse battery staple " * 4
    created = await register(client, "ada@example.com", long_password)
    await _set_hash(ctx, created["id"], _bcrypt(long_password.encode()[:72]))
    await login(client, "ada@example.com", long_password)

    response = await _login(client, "ada@example.com", long_password)

    assert response.status_code == 200


async def test_login_upgrades_argon2id_hash_with_weaker_parameters(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = ctx.settings.auth
    created = await register(client, "ada@example.com")
    weak_hash = _weaker_argon2(ctx).hash(normalize_password(PASSWORD))
    await _set_hash(ctx, created["id"], weak_hash)

    await login(client, "ada@example.com")

    stored = await _stored_hash(ctx, created["id"])
    assert stored != weak_hash
    assert stored.startswith("$argon2id$")
    params = (
        f"m={auth.argon2_memory_cost_kib},t={auth.argon2_time_cost},p={auth.argon2_parallelism}$"
    )
    assert params in stored


async def test_login_keeps_an_argon2id_hash_with_stronger_parameters(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    # Only bcrypt and *weaker* argon2 hashes are to be replaced (PasswordHasher, login
    # docstrings); a stronger hash must not be downgraded to the current settings.
    auth = ctx.settings.auth
    created = await register(client, "ada@example.com")
    stronger = Argon2Hasher(
        time_cost=auth.argon2_time_cost + 1,
        memory_cost=auth.argon2_memory_cost_kib * 2,
        parallelism=auth.argon2_parallelism,
    ).hash(normalize_password(PASSWORD))
    await _set_hash(ctx, created["id"], stronger)

    await login(client, "ada@example.com")

    assert await _stored_hash(ctx, created["id"]) == stronger


async def test_login_keeps_an_argon2id_hash_with_current_parameters(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    before = await _stored_hash(ctx, created["id"])

    await login(client, "ada@example.com")

    assert await _stored_hash(ctx, created["id"]) == before


async def test_login_failure_does_not_change_a_weak_stored_hash(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    weak_hash = _weaker_argon2(ctx).hash(normalize_password(PASSWORD))
    await _set_hash(ctx, created["id"], weak_hash)

    response = await _login(client, "ada@example.com", "not the right password")

    assert response.status_code == 401
    assert await _stored_hash(ctx, created["id"]) == weak_hash


async def test_login_failure_does_not_change_a_bcrypt_hash(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    legacy = _bcrypt(PASSWORD.encode())
    await _set_hash(ctx, created["id"], legacy)

    response = await _login(client, "ada@example.com", "not the right password")

    assert response.status_code == 401
    assert await _stored_hash(ctx, created["id"]) == legacy


# --- off the event loop --------------------------------------------------------------------


async def test_login_verifies_the_password_in_a_worker_thread(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(client, "ada@example.com")
    threads = _count_verifications(ctx, monkeypatch)
    loop_thread = threading.current_thread()

    await login(client, "ada@example.com")

    assert len(threads) == 1
    assert threads[0] is not loop_thread
    assert threads[0] is not threading.main_thread()
