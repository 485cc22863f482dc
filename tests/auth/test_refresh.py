"""Refresh-token rotation through the API: single use, family revocation on reuse, idle and
absolute session lifetimes, and refusal of malformed bodies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuthSession
from tests.factories import login, register

URL = "/api/v1/auth/refresh"


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(URL, json={"refresh_token": token})


async def _me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"})


async def _signed_in(client: httpx.AsyncClient) -> dict[str, Any]:
    await register(client, "ada@example.com")
    return await login(client, "ada@example.com")


async def _only_session(ctx: AppContext) -> AuthSession:
    async with ctx.sessionmaker() as db:
        return (await db.execute(select(AuthSession))).scalar_one()


# --- rotation ------------------------------------------------------------------------------


async def test_refresh_returns_a_new_token_pair(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 200
    new = response.json()
    assert new["token_type"] == "bearer"
    assert new["expires_in"] == 900
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"]


async def test_refreshed_access_token_authenticates(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    new = (await _refresh(client, tokens["refresh_token"])).json()

    response = await _me(client, new["access_token"])

    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


async def test_refreshed_token_can_be_refreshed_again(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    new = (await _refresh(client, tokens["refresh_token"])).json()

    response = await _refresh(client, new["refresh_token"])

    assert response.status_code == 200
    assert response.json()["refresh_token"] not in (tokens["refresh_token"], new["refresh_token"])


async def test_used_refresh_token_is_401_refresh_token_reused(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 200

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_reused"


# --- reuse revokes the family --------------------------------------------------------------


async def test_reuse_refuses_the_rotated_refresh_token(client: httpx.AsyncClient) -> None:
    tokens = await _signed_in(client)
    new = (await _refresh(client, tokens["refresh_token"])).json()
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 401

    response = await _refresh(client, new["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_reuse_revokes_the_access_token_of_the_rotated_pair(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)
    new = (await _refresh(client, tokens["refresh_token"])).json()
    assert (await _me(client, new["access_token"])).status_code == 200  # cached as active

    await _refresh(client, tokens["refresh_token"])

    response = await _me(client, new["access_token"])
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_reuse_revocation_is_committed_to_the_session_row(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    tokens = await _signed_in(client)
    await _refresh(client, tokens["refresh_token"])
    clock.advance(seconds=10)

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 401
    session = await _only_session(ctx)
    assert session.revoked_at == clock.now()
    assert session.revoked_reason == "refresh_token_reused"


async def test_reuse_of_the_rotated_token_after_its_own_use_is_also_detected(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)
    second = (await _refresh(client, tokens["refresh_token"])).json()
    assert (await _refresh(client, second["refresh_token"])).status_code == 200

    response = await _refresh(client, second["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_reused"


async def test_reuse_does_not_revoke_other_sessions_of_the_user(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)
    other = await login(client, "ada@example.com")
    await _refresh(client, tokens["refresh_token"])
    await _refresh(client, tokens["refresh_token"])

    response = await _refresh(client, other["refresh_token"])

    assert response.status_code == 200


# --- unknown and malformed tokens ----------------------------------------------------------


async def test_unknown_refresh_token_is_401_invalid_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    await _signed_in(client)

    response = await _refresh(client, "dGhpcyBpcyBub3QgYSByZWFsIHJlZnJlc2ggdG9rZW4")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_access_token_as_refresh_token_is_401_invalid_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)

    response = await _refresh(client, tokens["access_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_empty_refresh_token_is_401_invalid_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    response = await _refresh(client, "")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"refresh_token": "x" * 10_240}, id="10kb-token"),
        pytest.param({"refresh_token": "x" * 1025}, id="1025-chars"),
        pytest.param({}, id="missing-field"),
        pytest.param({"refresh_token": None}, id="null"),
        pytest.param({"refresh_token": 12345}, id="int"),
        pytest.param({"refresh_token": ["abc"]}, id="list"),
        pytest.param({"refresh_token": "abc", "user_id": "x"}, id="extra-field"),
        pytest.param(["abc"], id="array-body"),
        pytest.param("abc", id="string-body"),
    ],
)
async def test_malformed_refresh_body_is_422_validation_error(
    client: httpx.AsyncClient, body: Any
) -> None:
    response = await client.post(URL, json=body)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_non_json_refresh_body_is_422_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, content=b"refresh_token=abc", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_extra_field_with_a_valid_token_does_not_consume_it(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)
    refused = await client.post(URL, json={"refresh_token": tokens["refresh_token"], "x": 1})
    assert refused.status_code == 422

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 200


# --- lifetimes -----------------------------------------------------------------------------


async def test_refresh_after_idle_limit_is_401_invalid_refresh_token(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    tokens = await _signed_in(client)
    clock.advance(seconds=ctx.settings.auth.refresh_token_idle_ttl_seconds + 1)

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_refresh_just_before_idle_limit_succeeds(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    tokens = await _signed_in(client)
    clock.advance(seconds=ctx.settings.auth.refresh_token_idle_ttl_seconds - 1)

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 200


async def test_idle_expired_refresh_is_not_counted_as_reuse(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    tokens = await _signed_in(client)
    clock.advance(seconds=ctx.settings.auth.refresh_token_idle_ttl_seconds + 1)
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 401

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_regular_refreshes_keep_the_session_alive_past_the_idle_limit(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = ctx.settings.auth
    step = auth.refresh_token_idle_ttl_seconds * 3 // 4
    assert 2 * step < auth.refresh_token_absolute_ttl_seconds
    token = (await _signed_in(client))["refresh_token"]

    clock.advance(seconds=step)
    first = await _refresh(client, token)
    assert first.status_code == 200
    clock.advance(seconds=step)  # 1.5 idle limits since login, 0.75 since the last refresh
    response = await _refresh(client, first.json()["refresh_token"])

    assert response.status_code == 200


async def test_refresh_past_absolute_lifetime_is_401_even_when_used_regularly(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = ctx.settings.auth
    step = auth.refresh_token_idle_ttl_seconds // 2
    token = (await _signed_in(client))["refresh_token"]
    elapsed = 0
    while elapsed + step < auth.refresh_token_absolute_ttl_seconds:
        clock.advance(seconds=step)
        elapsed += step
        response = await _refresh(client, token)
        assert response.status_code == 200, elapsed
        token = response.json()["refresh_token"]
    clock.advance(seconds=step)
    elapsed += step
    assert elapsed >= auth.refresh_token_absolute_ttl_seconds

    response = await _refresh(client, token)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_session_expires_at_is_the_absolute_lifetime_after_login(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    login_time = clock.now()
    await _signed_in(client)

    session = await _only_session(ctx)

    absolute = timedelta(seconds=ctx.settings.auth.refresh_token_absolute_ttl_seconds)
    assert session.expires_at == login_time + absolute


async def test_refresh_records_last_used_at(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    tokens = await _signed_in(client)
    clock.advance(hours=3)

    await _refresh(client, tokens["refresh_token"])

    assert (await _only_session(ctx)).last_used_at == clock.now()


# --- logout --------------------------------------------------------------------------------


async def test_refresh_after_logout_is_401_invalid_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    tokens = await _signed_in(client)
    out = await client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert out.status_code == 204

    response = await _refresh(client, tokens["refresh_token"])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"
