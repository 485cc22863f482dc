"""Changing the password: POST /api/v1/users/me/password."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atrium.core.clock import FrozenClock
from tests.factories import PASSWORD, login, register

ME = "/api/v1/users/me"
CHANGE = "/api/v1/users/me/password"
EMAIL = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def try_login(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", data={"username": EMAIL, "password": password})


@pytest.fixture
async def sessions(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """One user with two sessions, ``current`` and ``other``; both principals cached."""
    await register(client, EMAIL)
    current = await login(client, EMAIL, user_agent="laptop")
    other = await login(client, EMAIL, user_agent="phone")
    for tokens in (current, other):
        assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
    return {"current": current, "other": other}


@pytest.fixture
async def changed(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``sessions`` after the ``current`` session changed the password to NEW_PASSWORD."""
    response = await client.post(
        CHANGE,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(sessions["current"]),
    )
    assert response.status_code == 204, response.text
    return sessions


async def test_change_with_right_current_password_is_204(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]]
) -> None:
    response = await client.post(
        CHANGE,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(sessions["current"]),
    )

    assert response.status_code == 204
    assert response.content == b""


async def test_current_sessions_access_token_keeps_working(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await client.get(ME, headers=bearer(changed["current"]))

    assert response.status_code == 200


async def test_current_sessions_refresh_token_keeps_working(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": changed["current"]["refresh_token"]}
    )

    assert response.status_code == 200


async def test_other_sessions_access_token_is_401_at_once(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await client.get(ME, headers=bearer(changed["other"]))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_other_sessions_refresh_token_is_401(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": changed["other"]["refresh_token"]}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_other_session_disappears_from_the_session_list(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await client.get(f"{ME}/sessions", headers=bearer(changed["current"]))

    assert [s["user_agent"] for s in response.json()] == ["laptop"]


async def test_old_password_no_longer_logs_in(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await try_login(client, PASSWORD)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_new_password_logs_in(
    client: httpx.AsyncClient, changed: dict[str, dict[str, Any]]
) -> None:
    response = await try_login(client, NEW_PASSWORD)

    assert response.status_code == 200


async def test_change_refreshes_updated_at_seen_by_get_me(
    client: httpx.AsyncClient, clock: FrozenClock, sessions: dict[str, dict[str, Any]]
) -> None:
    auth = bearer(sessions["current"])
    before = (await client.get(ME, headers=auth)).json()["updated_at"]  # cached snapshot
    clock.advance(minutes=1)

    await client.post(
        CHANGE, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=auth
    )
    after = (await client.get(ME, headers=auth)).json()["updated_at"]

    assert after != before


async def test_wrong_current_password_is_403_incorrect_password(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]]
) -> None:
    response = await client.post(
        CHANGE,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=bearer(sessions["current"]),
    )

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "incorrect_password"


async def test_wrong_current_password_changes_nothing(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]]
) -> None:
    await client.post(
        CHANGE,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=bearer(sessions["current"]),
    )

    assert (await try_login(client, PASSWORD)).status_code == 200
    assert (await try_login(client, NEW_PASSWORD)).status_code == 401
    assert (await client.get(ME, headers=bearer(sessions["other"]))).status_code == 200


@pytest.mark.parametrize(
    "weak",
    ["short", "password123", "ada-1815-ada"],
    ids=["too_short", "common", "contains_email"],
)
async def test_weak_new_password_is_422_weak_password(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]], weak: str
) -> None:
    response = await client.post(
        CHANGE,
        json={"current_password": PASSWORD, "new_password": weak},
        headers=bearer(sessions["current"]),
    )

    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    assert {tuple(e["loc"]) for e in response.json()["errors"]} == {("body", "new_password")}


async def test_weak_new_password_leaves_the_password_and_sessions_unchanged(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]]
) -> None:
    await client.post(
        CHANGE,
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(sessions["current"]),
    )

    assert (await try_login(client, PASSWORD)).status_code == 200
    assert (await try_login(client, "short")).status_code == 401
    assert (await client.get(ME, headers=bearer(sessions["other"]))).status_code == 200


async def test_change_without_token_is_401_not_authenticated(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CHANGE, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


async def test_change_with_missing_new_password_is_422_validation_error(
    client: httpx.AsyncClient, sessions: dict[str, dict[str, Any]]
) -> None:
    response = await client.post(
        CHANGE, json={"current_password": PASSWORD}, headers=bearer(sessions["current"])
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
