"""The assurance of sessions (aal, amr, auth_time) and step-up (RFC 9470)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuditEvent, MfaFactor
from tests.factories import PASSWORD, login, register, signed_in_as

STEP_UP_AAL1 = 'Bearer error="insufficient_user_authentication", max_age=600, acr_values="aal1"'
STEP_UP_AAL2 = 'Bearer error="insufficient_user_authentication", max_age=600, acr_values="aal2"'


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def claims(tokens: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        tokens["access_token"], options={"verify_signature": False}
    )
    return decoded


async def change_password(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase 42"},
        headers=headers,
    )


async def add_verified_factor(ctx: AppContext, user_id: str) -> None:
    """A verified TOTP factor written directly (its secret is never used here)."""
    async with ctx.sessionmaker() as db:
        now = ctx.clock.now()
        db.add(
            MfaFactor(
                id=uuid.uuid4(),
                user_id=uuid.UUID(user_id),
                type="totp",
                name="Phone",
                created_at=now,
                verified_at=now,
            )
        )
        await db.commit()


async def test_login_opens_an_aal1_password_session(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")

    tokens = await login(client, "ada@example.com")

    now = int(clock.now().timestamp())
    assert (tokens["acr"], tokens["amr"], tokens["auth_time"]) == ("aal1", ["pwd"], now)
    token = claims(tokens)
    assert (token["acr"], token["amr"], token["auth_time"]) == ("aal1", ["pwd"], now)
    sessions = await client.get("/api/v1/users/me/sessions", headers=bearer(tokens))
    [session] = sessions.json()
    assert (session["aal"], session["amr"]) == (1, ["pwd"])
    assert datetime.fromisoformat(session["auth_time"]).timestamp() == now


async def test_recent_authentication_passes_the_step_up_check(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    clock.advance(seconds=599)

    response = await change_password(client, bearer(tokens))

    assert response.status_code == 204, response.text


async def test_stale_authentication_is_401_step_up_required_with_the_rfc9470_header(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    clock.advance(seconds=601)
    refreshed = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()

    response = await change_password(client, bearer(refreshed))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == STEP_UP_AAL1
    body = response.json()
    assert (body["code"], body["max_age"], body["acr_values"]) == ("step_up_required", 600, "aal1")
    # Refreshing never raises the assurance: the new token keeps the login's auth_time.
    assert refreshed["auth_time"] == tokens["auth_time"]
    assert claims(refreshed)["auth_time"] == tokens["auth_time"]


async def test_account_with_mfa_needs_aal2_even_when_recent(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    await add_verified_factor(ctx, user["id"])

    response = await change_password(client, bearer(tokens))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == STEP_UP_AAL2
    assert response.json()["acr_values"] == "aal2"


async def test_step_up_with_the_password_gives_a_fresh_pair_for_the_same_session(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    clock.advance(minutes=11)

    response = await client.post(
        "/api/v1/auth/step-up", json={"password": PASSWORD}, headers=bearer(tokens)
    )

    assert response.status_code == 200, response.text
    fresh = response.json()
    assert fresh["auth_time"] == int(clock.now().timestamp())
    assert (fresh["acr"], fresh["amr"]) == ("aal1", ["pwd"])
    assert claims(fresh)["sid"] == claims(tokens)["sid"]
    assert (await change_password(client, bearer(fresh))).status_code == 204
    # The session's earlier refresh token is retired, not reused (no revocation).
    old = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert old.json()["code"] == "invalid_refresh_token"
    async with ctx.sessionmaker() as db:
        actions = (await db.execute(select(AuditEvent.action))).scalars().all()
    assert "auth.step_up" in actions


async def test_step_up_with_a_wrong_password_is_401_and_recorded(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(
        "/api/v1/auth/step-up", json={"password": "not the password"}, headers=bearer(tokens)
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    async with ctx.sessionmaker() as db:
        event = (
            await db.execute(select(AuditEvent).where(AuditEvent.action == "auth.mfa_failed"))
        ).scalar_one()
    assert event.details == {"method": "password"}


async def test_step_up_with_a_code_without_mfa_is_400(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(
        "/api/v1/auth/step-up", json={"code": "123456"}, headers=bearer(tokens)
    )

    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_method"


@pytest.mark.parametrize(
    "body", [{}, {"password": PASSWORD, "code": "123456"}], ids=["none", "two"]
)
async def test_step_up_takes_exactly_one_method(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post("/api/v1/auth/step-up", json=body, headers=bearer(tokens))

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/api/v1/users/me", {"password": PASSWORD}),
        ("POST", "/api/v1/users/me/email", {"new_email": "new@example.com", "password": PASSWORD}),
        (
            "POST",
            "/api/v1/users/me/password",
            {"current_password": PASSWORD, "new_password": "another long passphrase 42"},
        ),
    ],
    ids=["delete-account", "change-email", "change-password"],
)
async def test_sensitive_account_operations_need_a_recent_authentication(
    client: httpx.AsyncClient, clock: FrozenClock, method: str, path: str, body: dict[str, str]
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    clock.advance(minutes=11)

    stale = await client.request(method, path, json=body, headers=bearer(tokens))
    fresh = (
        await client.post(
            "/api/v1/auth/step-up", json={"password": PASSWORD}, headers=bearer(tokens)
        )
    ).json()
    done = await client.request(method, path, json=body, headers=bearer(fresh))

    assert stale.status_code == 401
    assert stale.json()["code"] == "step_up_required"
    assert done.status_code in (202, 204), done.text


async def test_role_grants_need_a_recent_authentication(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    user = await register(client, "ada@example.com")
    clock.advance(minutes=11)

    grant = await client.put(f"/api/v1/admin/users/{user['id']}/roles/moderator", headers=admin)
    revoke = await client.delete(f"/api/v1/admin/users/{user['id']}/roles/user", headers=admin)

    assert (grant.status_code, revoke.status_code) == (401, 401)
    assert grant.headers["www-authenticate"] == STEP_UP_AAL1


async def test_creating_an_api_key_needs_a_recent_authentication_and_a_key_never_steps_up(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    body = {"name": "CI", "scopes": ["profiles:read"], "expires_in_days": 30}
    created = await client.post("/api/v1/users/me/api-keys", json=body, headers=bearer(tokens))
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    clock.advance(minutes=11)

    stale = await client.post("/api/v1/users/me/api-keys", json=body, headers=bearer(tokens))
    with_key = await client.post("/api/v1/auth/step-up", json={"password": PASSWORD}, headers=key)

    assert (stale.status_code, stale.json()["code"]) == (401, "step_up_required")
    assert (with_key.status_code, with_key.json()["code"]) == (403, "api_key_not_allowed")
