"""Logout through the API: the session's tokens stop working at once; an optional refresh
token revokes another session of the same user, never one of another user."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.models import AuthSession
from tests.factories import login, register

URL = "/api/v1/auth/logout"


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _me(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await client.get("/api/v1/users/me", headers=_bearer(tokens))


async def _refresh(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )


async def _signed_in(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, Any]:
    await register(client, email)
    return await login(client, email)


async def _sessions_of(ctx: AppContext, user_id: str) -> list[AuthSession]:
    async with ctx.sessionmaker() as db:
        return list(
            (
                await db.execute(
                    select(AuthSession).where(AuthSession.user_id == uuid.UUID(user_id))
                )
            ).scalars()
        )


async def test_logout_is_204_without_body(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)

    response = await client.post(URL, headers=_bearer(tokens))

    assert response.status_code == 204
    assert response.content == b""


async def test_access_token_is_401_invalid_token_after_logout(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    assert (await _me(client, tokens)).status_code == 200  # cached as active first
    assert (await client.post(URL, headers=_bearer(tokens))).status_code == 204

    response = await _me(client, tokens)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_refresh_token_is_401_after_logout(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    assert (await client.post(URL, headers=_bearer(tokens))).status_code == 204

    response = await _refresh(client, tokens)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_logout_records_the_revocation_in_the_database(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    await client.post(URL, headers=_bearer(tokens))

    [session] = await _sessions_of(ctx, created["id"])
    assert session.revoked_at is not None
    assert session.revoked_reason == "logout"


async def test_logout_leaves_other_sessions_of_the_user_alone(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    other = await login(client, "ada@example.com")

    await client.post(URL, headers=_bearer(tokens))

    assert (await _me(client, other)).status_code == 200
    assert (await _refresh(client, other)).status_code == 200


async def test_logout_with_refresh_token_of_own_other_session_revokes_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    current = await login(client, "ada@example.com")
    other = await login(client, "ada@example.com", user_agent="other device")
    assert (await _me(client, other)).status_code == 200

    response = await client.post(
        URL, headers=_bearer(current), json={"refresh_token": other["refresh_token"]}
    )

    assert response.status_code == 204
    assert (await _me(client, other)).status_code == 401
    sessions = await _sessions_of(ctx, created["id"])
    assert len(sessions) == 2
    assert all(s.revoked_reason == "logout" for s in sessions)


async def test_logout_with_refresh_token_of_own_other_session_refuses_that_token(
    client: httpx.AsyncClient,
) -> None:
    current = await _signed_in(client)
    other = await login(client, "ada@example.com", user_agent="other device")

    await client.post(URL, headers=_bearer(current), json={"refresh_token": other["refresh_token"]})

    response = await _refresh(client, other)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_logout_with_refresh_token_of_another_user_does_not_revoke_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await _signed_in(client, "ada@example.com")
    bob_user = await register(client, "bob@example.com")
    bob = await login(client, "bob@example.com")

    response = await client.post(
        URL, headers=_bearer(ada), json={"refresh_token": bob["refresh_token"]}
    )

    assert response.status_code == 204
    [bob_session] = await _sessions_of(ctx, bob_user["id"])
    assert bob_session.revoked_at is None
    assert (await _me(client, bob)).status_code == 200
    assert (await _refresh(client, bob)).status_code == 200


async def test_logout_with_unknown_refresh_token_still_logs_out(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)

    response = await client.post(
        URL, headers=_bearer(tokens), json={"refresh_token": "not-a-real-refresh-token"}
    )

    assert response.status_code == 204
    assert (await _me(client, tokens)).status_code == 401


async def test_logout_without_token_is_401_not_authenticated(client: httpx.AsyncClient) -> None:
    response = await client.post(URL)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_logout_with_refresh_token_in_body_but_no_bearer_is_401_not_authenticated(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)

    response = await client.post(URL, json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert (await _refresh(client, tokens)).status_code == 200


async def test_logout_with_garbage_bearer_is_401_invalid_token(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers={"Authorization": "Bearer not-a-jwt"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_second_logout_with_same_access_token_is_401(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    assert (await client.post(URL, headers=_bearer(tokens))).status_code == 204

    response = await client.post(URL, headers=_bearer(tokens))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_logout_with_extra_body_field_is_422(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)

    response = await client.post(URL, headers=_bearer(tokens), json={"everything": True})

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert (await _me(client, tokens)).status_code == 200
