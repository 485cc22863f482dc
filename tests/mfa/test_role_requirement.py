"""MFA required by role: inherited through the hierarchy, a grace period, then tokens that
reach only enrolment; permission-checked routes need aal2 from holders."""

from __future__ import annotations

import httpx
import jwt
import pytest

from atrium.config import MfaSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import grant_role, login, register, signed_in_as
from tests.mfa.helpers import (
    MFA,
    UA,
    VERIFY,
    bearer,
    enrol_totp,
    mfa_account,
    mfa_token,
    password_step,
    totp_code,
    verify_email,
)

SESSIONS = "/api/v1/users/me/sessions"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    mfa = MfaSettings(role_requirement_enabled=True, enrollment_grace_period_seconds=86_400)
    return settings.model_copy(update={"mfa": mfa})


async def test_built_in_admin_roles_require_mfa(client: httpx.AsyncClient, ctx: AppContext) -> None:
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")

    roles = {r["name"]: r for r in (await client.get("/api/v1/admin/roles", headers=root)).json()}

    assert {n for n, r in roles.items() if r["mfa_required"]} == {"admin", "superadmin"}
    assert {n for n, r in roles.items() if r["effective_mfa_required"]} == {"admin", "superadmin"}


async def test_a_role_inheriting_the_requirement_gets_a_grace_period_then_only_enrolment(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    created = await client.post(
        "/api/v1/admin/roles", json={"name": "helpdesk", "parents": ["moderator"]}, headers=root
    )
    changed = await client.patch(
        "/api/v1/admin/roles/moderator", json={"mfa_required": True}, headers=root
    )
    assert (created.status_code, changed.status_code) == (201, 200), changed.text
    assert changed.json()["mfa_required"] is True
    user = await register(client, "ada@example.com")
    await verify_email(ctx, user["id"])
    await grant_role(ctx, user["id"], "helpdesk")
    tokens = await login(client, "ada@example.com")
    deadline = int(clock.now().timestamp()) + 86_400

    in_grace = await client.get(SESSIONS, headers=bearer(tokens))
    status = (await client.get(MFA, headers=bearer(tokens))).json()
    assert in_grace.status_code == 200
    assert status["required"] is True
    assert (
        abs(
            jwt.decode(tokens["access_token"], options={"verify_signature": False})["mfa_enrol_by"]
            - deadline
        )
        <= 1
    )

    clock.advance(seconds=86_401)
    tokens = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    blocked = await client.get(SESSIONS, headers=bearer(tokens))
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    mfa = await client.get(MFA, headers=bearer(tokens))
    assert (blocked.status_code, blocked.json()["code"]) == (403, "mfa_enrollment_required")
    assert (me.status_code, mfa.status_code) == (200, 200)

    stepped = await client.post(
        "/api/v1/auth/step-up",
        json={"password": "correct horse battery staple"},
        headers=bearer(tokens),
    )
    assert stepped.status_code == 200, stepped.text
    _, _, body = await enrol_totp(client, clock, stepped.json())
    assert (await client.get(SESSIONS, headers=bearer(body["tokens"]))).status_code == 200


async def test_permission_checked_routes_need_aal2_from_holders_with_a_factor(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    admin = await mfa_account(client, ctx, clock, "root@example.com")
    await grant_role(ctx, admin.id, "admin")
    remembered = await client.post(
        VERIFY,
        json={
            "mfa_token": await mfa_token(client, admin.email),
            "code": totp_code(admin.secret, clock),
            "remember_device": True,
        },
        headers=UA,
    )
    aal2 = remembered.json()
    aal1 = (await password_step(client, admin.email, device_token=aal2["device_token"])).json()

    refused = await client.get("/api/v1/admin/users", headers=bearer(aal1))
    allowed = await client.get("/api/v1/admin/users", headers=bearer(aal2))

    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].endswith('acr_values="aal2"')
    assert allowed.status_code == 200


async def test_without_the_requirement_a_holder_passes_at_aal1(
    client: httpx.AsyncClient, ctx: AppContext, settings: Settings
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")

    # In its grace period, an admin without a factor works at aal1.
    response = await client.get("/api/v1/admin/users", headers=admin)

    assert response.status_code == 200
    assert settings.mfa.role_requirement_enabled
