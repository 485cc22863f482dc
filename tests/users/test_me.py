"""The signed-in user's own account: GET, PATCH and DELETE /api/v1/users/me."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.models import AuthSession, User
from tests.factories import PASSWORD, login, register

ME = "/api/v1/users/me"
EMAIL = "ada@example.com"

USER_FIELDS = {
    "id",
    "email",
    "full_name",
    "status",
    "email_verified",
    "is_superuser",
    "created_at",
    "updated_at",
    "last_login_at",
    "locale",
    "roles",
}


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def db_user(ctx: AppContext, user_id: str) -> User | None:
    async with ctx.sessionmaker() as db:
        return await db.get(User, uuid.UUID(user_id))


async def session_rows(ctx: AppContext, user_id: str) -> int:
    async with ctx.sessionmaker() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(AuthSession)
            .where(AuthSession.user_id == uuid.UUID(user_id))
        )
    return int(count or 0)


@pytest.fixture
async def account(client: httpx.AsyncClient) -> dict[str, Any]:
    """A registered user with one session: ``user`` (the 201 body) and ``tokens``."""
    user = await register(client, EMAIL)
    tokens = await login(client, EMAIL)
    return {"user": user, "tokens": tokens, "auth": bearer(tokens)}


# --- GET ---------------------------------------------------------------------------------


async def test_get_me_returns_the_signed_in_account(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    response = await client.get(ME, headers=account["auth"])

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == account["user"]["id"]
    assert body["email"] == EMAIL
    assert body["status"] == "active"
    assert body["is_superuser"] is False


async def test_get_me_exposes_no_password_or_hash_field(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    response = await client.get(ME, headers=account["auth"])

    body = response.json()
    assert set(body) == USER_FIELDS
    assert not [k for k in body if "password" in k.lower() or "hash" in k.lower()]
    assert "$argon2" not in response.text


async def test_get_me_without_token_is_401_not_authenticated(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- PATCH -------------------------------------------------------------------------------


async def test_patch_full_name_returns_the_updated_account(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    response = await client.patch(ME, json={"full_name": "Ada King"}, headers=account["auth"])

    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada King"


async def test_patch_full_name_is_seen_by_the_next_get_despite_the_principal_cache(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    warm = await client.get(ME, headers=account["auth"])  # caches the principal
    assert warm.json()["full_name"] is None

    await client.patch(ME, json={"full_name": "Ada King"}, headers=account["auth"])
    response = await client.get(ME, headers=account["auth"])

    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada King"


async def test_patch_full_name_is_seen_by_the_users_other_sessions(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    other = bearer(await login(client, EMAIL))
    await client.get(ME, headers=other)  # caches the principal of the other session

    await client.patch(ME, json={"full_name": "Ada King"}, headers=account["auth"])
    response = await client.get(ME, headers=other)

    assert response.json()["full_name"] == "Ada King"


async def test_patch_full_name_is_stored(
    client: httpx.AsyncClient, ctx: AppContext, account: dict[str, Any]
) -> None:
    await client.patch(ME, json={"full_name": "Ada King"}, headers=account["auth"])

    user = await db_user(ctx, account["user"]["id"])
    assert user is not None
    assert user.full_name == "Ada King"


@pytest.mark.parametrize(
    "body",
    [{"is_superuser": True}, {"email": "x@y.z"}, {"status": "suspended"}],
    ids=["is_superuser", "email", "status"],
)
async def test_patch_of_a_field_the_owner_may_not_change_is_422_validation_error(
    client: httpx.AsyncClient, account: dict[str, Any], body: dict[str, Any]
) -> None:
    response = await client.patch(ME, json=body, headers=account["auth"])

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        {"is_superuser": True},
        {"email": "x@y.z"},
        {"status": "suspended"},
        {"full_name": "Ada King", "is_superuser": True},
    ],
    ids=["is_superuser", "email", "status", "with_allowed_field"],
)
async def test_refused_patch_changes_nothing_in_the_database(
    client: httpx.AsyncClient, ctx: AppContext, account: dict[str, Any], body: dict[str, Any]
) -> None:
    await client.patch(ME, json=body, headers=account["auth"])

    user = await db_user(ctx, account["user"]["id"])
    me = (await client.get(ME, headers=account["auth"])).json()
    assert user is not None
    assert (user.email, user.full_name, user.status) == (EMAIL, None, "active")
    assert (me["is_superuser"], me["roles"]) == (False, ["user"])


async def test_full_name_of_200_characters_is_accepted(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    response = await client.patch(ME, json={"full_name": "a" * 200}, headers=account["auth"])

    assert response.status_code == 200
    assert response.json()["full_name"] == "a" * 200


async def test_full_name_over_200_characters_is_422_and_not_stored(
    client: httpx.AsyncClient, ctx: AppContext, account: dict[str, Any]
) -> None:
    response = await client.patch(ME, json={"full_name": "a" * 201}, headers=account["auth"])

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    user = await db_user(ctx, account["user"]["id"])
    assert user is not None
    assert user.full_name is None


async def test_patch_without_token_is_401_not_authenticated(client: httpx.AsyncClient) -> None:
    response = await client.patch(ME, json={"full_name": "Ada King"})

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


# --- DELETE ------------------------------------------------------------------------------


async def delete_me(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any] | None
) -> httpx.Response:
    return await client.request("DELETE", ME, json=body, headers=auth)


async def test_delete_me_with_wrong_password_is_403_incorrect_password(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    response = await delete_me(client, account["auth"], {"password": "not my password"})

    assert response.status_code == 403
    assert response.json()["code"] == "incorrect_password"


async def test_delete_me_with_wrong_password_leaves_the_account_intact(
    client: httpx.AsyncClient, ctx: AppContext, account: dict[str, Any]
) -> None:
    await delete_me(client, account["auth"], {"password": "not my password"})

    assert (await client.get(ME, headers=account["auth"])).status_code == 200
    assert await db_user(ctx, account["user"]["id"]) is not None
    assert await session_rows(ctx, account["user"]["id"]) == 1
    await login(client, EMAIL)


async def test_delete_me_without_body_is_422(
    client: httpx.AsyncClient, ctx: AppContext, account: dict[str, Any]
) -> None:
    response = await delete_me(client, account["auth"], None)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert await db_user(ctx, account["user"]["id"]) is not None


async def test_delete_me_with_right_password_is_202_with_the_erasure_date(
    client: httpx.AsyncClient, account: dict[str, Any], ctx: AppContext
) -> None:
    response = await delete_me(client, account["auth"], {"password": PASSWORD})

    assert response.status_code == 202
    due = response.json()["deletion_due_at"].replace("Z", "+00:00")
    assert datetime.fromisoformat(due) == ctx.clock.now() + timedelta(days=30)


@pytest.fixture
async def deleted(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    """``account`` after a successful DELETE /users/me (its principal was cached first)."""
    assert (await client.get(ME, headers=account["auth"])).status_code == 200
    response = await delete_me(client, account["auth"], {"password": PASSWORD})
    assert response.status_code == 202
    return account


async def test_deleted_accounts_access_token_is_401_at_once(
    client: httpx.AsyncClient, deleted: dict[str, Any]
) -> None:
    response = await client.get(ME, headers=deleted["auth"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_deleted_account_can_only_cancel_the_deletion_at_login(
    client: httpx.AsyncClient, deleted: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/auth/login", data={"username": EMAIL, "password": PASSWORD}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "account_deletion_pending"
    assert "access_token" not in response.json()


async def test_deleted_accounts_refresh_token_is_401(
    client: httpx.AsyncClient, deleted: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": deleted["tokens"]["refresh_token"]}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_deleted_account_is_hidden_until_its_erasure(
    ctx: AppContext, deleted: dict[str, Any]
) -> None:
    user = await db_user(ctx, deleted["user"]["id"])
    assert user is not None
    assert user.deleted_at == ctx.clock.now()
    assert user.deletion_due_at == ctx.clock.now() + timedelta(days=30)


async def test_deleted_accounts_other_sessions_are_401(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    other = bearer(await login(client, EMAIL))
    assert (await client.get(ME, headers=other)).status_code == 200

    await delete_me(client, account["auth"], {"password": PASSWORD})

    assert (await client.get(ME, headers=other)).status_code == 401
