"""The signed-in user's sessions: GET /users/me/sessions, DELETE /users/me/sessions/{id}."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import login, register

ME = "/api/v1/users/me"
SESSIONS = "/api/v1/users/me/sessions"
EMAIL = "ada@example.com"
CLIENT_IP = "203.0.113.7"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def session_id(ctx: AppContext, tokens: dict[str, Any]) -> str:
    """The session id carried by the access token of ``tokens``."""
    return str(ctx.tokens.verify(tokens["access_token"], now=ctx.clock.now()).session_id)


async def listed(client: httpx.AsyncClient, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(SESSIONS, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


@pytest.fixture
async def mine(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Ada's three sessions by user agent; each principal is cached."""
    await register(client, EMAIL)
    tokens = {ua: await login(client, EMAIL, user_agent=ua) for ua in ("laptop", "phone", "tv")}
    for t in tokens.values():
        assert (await client.get(ME, headers=bearer(t))).status_code == 200
    return tokens


@pytest.fixture
async def theirs(client: httpx.AsyncClient) -> dict[str, Any]:
    """A session of another user, Bob; its principal is cached."""
    await register(client, "bob@example.com")
    tokens = await login(client, "bob@example.com", user_agent="bob-browser")
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
    return tokens


# --- listing -----------------------------------------------------------------------------


async def test_list_shows_every_live_session_of_the_user(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    sessions = await listed(client, mine["laptop"])

    assert {s["id"] for s in sessions} == {session_id(ctx, t) for t in mine.values()}


async def test_list_items_carry_the_session_fields(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]]
) -> None:
    sessions = await listed(client, mine["laptop"])

    for s in sessions:
        assert {"id", "created_at", "last_used_at", "user_agent", "ip_address", "current"} <= set(s)
        uuid.UUID(s["id"])
        assert s["created_at"]
        assert s["last_used_at"]


async def test_list_shows_each_sessions_user_agent(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]]
) -> None:
    sessions = await listed(client, mine["laptop"])

    assert sorted(s["user_agent"] for s in sessions) == ["laptop", "phone", "tv"]


async def test_list_shows_the_clients_ip_address(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]]
) -> None:
    sessions = await listed(client, mine["laptop"])

    assert [s["ip_address"] for s in sessions] == [CLIENT_IP] * 3


async def test_list_marks_exactly_the_calling_session_current(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    sessions = await listed(client, mine["phone"])

    current = [s for s in sessions if s["current"] is True]
    assert len(current) == 1
    assert current[0]["id"] == session_id(ctx, mine["phone"])
    assert current[0]["user_agent"] == "phone"


async def test_list_is_newest_first(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await register(client, EMAIL)
    for ua in ("first", "second", "third"):
        last = await login(client, EMAIL, user_agent=ua)
        clock.advance(seconds=10)

    sessions = await listed(client, last)

    assert [s["user_agent"] for s in sessions] == ["third", "second", "first"]


async def test_list_does_not_show_other_users_sessions(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]], theirs: dict[str, Any]
) -> None:
    sessions = await listed(client, mine["laptop"])

    assert "bob-browser" not in {s["user_agent"] for s in sessions}


async def test_list_does_not_show_expired_sessions(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, EMAIL)
    await login(client, EMAIL, user_agent="old")
    clock.advance(seconds=ctx.settings.auth.refresh_token_absolute_ttl_seconds + 1)
    fresh = await login(client, EMAIL, user_agent="new")

    sessions = await listed(client, fresh)

    assert [s["user_agent"] for s in sessions] == ["new"]


async def test_list_without_token_is_401_not_authenticated(client: httpx.AsyncClient) -> None:
    response = await client.get(SESSIONS)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- revoking ----------------------------------------------------------------------------


async def test_revoke_another_of_my_sessions_is_204(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    response = await client.delete(
        f"{SESSIONS}/{session_id(ctx, mine['phone'])}", headers=bearer(mine["laptop"])
    )

    assert response.status_code == 204
    assert response.content == b""


async def test_revoked_sessions_access_token_is_401_at_once(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    await client.delete(
        f"{SESSIONS}/{session_id(ctx, mine['phone'])}", headers=bearer(mine["laptop"])
    )

    response = await client.get(ME, headers=bearer(mine["phone"]))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_revoked_sessions_refresh_token_is_401(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    await client.delete(
        f"{SESSIONS}/{session_id(ctx, mine['phone'])}", headers=bearer(mine["laptop"])
    )

    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": mine["phone"]["refresh_token"]}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_revoking_one_session_leaves_the_others_working(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    await client.delete(
        f"{SESSIONS}/{session_id(ctx, mine['phone'])}", headers=bearer(mine["laptop"])
    )

    assert (await client.get(ME, headers=bearer(mine["laptop"]))).status_code == 200
    assert (await client.get(ME, headers=bearer(mine["tv"]))).status_code == 200


async def test_revoked_session_disappears_from_the_list(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    revoked = session_id(ctx, mine["phone"])
    await client.delete(f"{SESSIONS}/{revoked}", headers=bearer(mine["laptop"]))

    sessions = await listed(client, mine["laptop"])

    assert revoked not in {s["id"] for s in sessions}
    assert sorted(s["user_agent"] for s in sessions) == ["laptop", "tv"]


async def test_logged_out_session_disappears_from_the_list(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]]
) -> None:
    out = await client.post("/api/v1/auth/logout", headers=bearer(mine["tv"]))
    assert out.status_code == 204

    sessions = await listed(client, mine["laptop"])

    assert sorted(s["user_agent"] for s in sessions) == ["laptop", "phone"]


async def test_revoking_an_already_revoked_session_is_404(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    url = f"{SESSIONS}/{session_id(ctx, mine['phone'])}"
    await client.delete(url, headers=bearer(mine["laptop"]))

    response = await client.delete(url, headers=bearer(mine["laptop"]))

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


async def test_revoking_the_current_session_ends_it(
    client: httpx.AsyncClient, ctx: AppContext, mine: dict[str, dict[str, Any]]
) -> None:
    response = await client.delete(
        f"{SESSIONS}/{session_id(ctx, mine['laptop'])}", headers=bearer(mine["laptop"])
    )

    assert response.status_code == 204
    assert (await client.get(ME, headers=bearer(mine["laptop"]))).status_code == 401


async def test_revoking_another_users_session_is_404_session_not_found(
    client: httpx.AsyncClient,
    ctx: AppContext,
    mine: dict[str, dict[str, Any]],
    theirs: dict[str, Any],
) -> None:
    response = await client.delete(
        f"{SESSIONS}/{session_id(ctx, theirs)}", headers=bearer(mine["laptop"])
    )

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "session_not_found"


async def test_another_users_session_survives_an_attempt_to_revoke_it(
    client: httpx.AsyncClient,
    ctx: AppContext,
    mine: dict[str, dict[str, Any]],
    theirs: dict[str, Any],
) -> None:
    await client.delete(f"{SESSIONS}/{session_id(ctx, theirs)}", headers=bearer(mine["laptop"]))

    assert (await client.get(ME, headers=bearer(theirs))).status_code == 200
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": theirs["refresh_token"]}
    )
    assert refreshed.status_code == 200


async def test_revoking_an_unknown_session_is_404_session_not_found(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]]
) -> None:
    response = await client.delete(f"{SESSIONS}/{uuid.uuid4()}", headers=bearer(mine["laptop"]))

    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"


async def test_revoking_a_session_id_that_is_not_a_uuid_is_422_validation_error(
    client: httpx.AsyncClient, mine: dict[str, dict[str, Any]]
) -> None:
    response = await client.delete(f"{SESSIONS}/not-a-uuid", headers=bearer(mine["laptop"]))

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_revoking_without_token_is_401_not_authenticated(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete(f"{SESSIONS}/{uuid.uuid4()}")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
