"""The audit trail: an event for every listed action, written in the change's
transaction, never containing a secret; the admin and self-service views."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atrium.audit.service import record, redact
from atrium.context import AppContext
from atrium.models import AuditEvent, User
from tests.factories import PASSWORD, login, register, signed_in_as

EVENTS = "/api/v1/admin/audit-events"
USERS = "/api/v1/admin/users"
NEW_PASSWORD = "a brand new passphrase 42"


async def _rows(ctx: AppContext) -> list[AuditEvent]:
    async with ctx.sessionmaker() as db:
        return list((await db.execute(select(AuditEvent))).scalars())


async def _actions(ctx: AppContext) -> list[str]:
    return [e.action for e in await _rows(ctx)]


async def _exercise_everything(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, Any]:
    """Every audited action once; the secrets that went over the wire."""
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    user = await register(client, "ada@example.com")
    first = await login(client, "ada@example.com", user_agent="phone")
    second = await login(client, "ada@example.com", user_agent="laptop")
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    await client.post("/api/v1/auth/login", data={"username": "ada@example.com", "password": "no"})
    await client.post(
        "/api/v1/auth/login", data={"username": "nobody@example.com", "password": "x"}
    )
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    reuse = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 401
    third = await login(client, "ada@example.com")
    bearer = {"Authorization": f"Bearer {third['access_token']}"}
    await client.patch("/api/v1/users/me", headers=bearer, json={"full_name": "Ada"})
    sessions = (await client.get("/api/v1/users/me/sessions", headers=bearer)).json()
    other = next(s["id"] for s in sessions if not s["current"])
    assert (
        await client.delete(f"/api/v1/users/me/sessions/{other}", headers=bearer)
    ).status_code == 204
    changed = await client.post(
        "/api/v1/users/me/password",
        headers=bearer,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    assert (await client.post("/api/v1/auth/logout", headers=bearer)).status_code == 204

    uid = user["id"]
    await client.post("/api/v1/admin/roles", headers=root, json={"name": "x", "permissions": []})
    await client.patch("/api/v1/admin/roles/x", headers=root, json={"permissions": ["users:read"]})
    await client.put(f"{USERS}/{uid}/roles/x", headers=root)
    await client.delete(f"{USERS}/{uid}/roles/x", headers=root)
    await client.delete("/api/v1/admin/roles/x", headers=root)
    await client.patch(f"{USERS}/{uid}", headers=root, json={"full_name": "Countess"})
    await client.patch(f"{USERS}/{uid}", headers=root, json={"status": "suspended"})
    await client.patch(f"{USERS}/{uid}", headers=root, json={"status": "active"})
    await client.post(f"{USERS}/{uid}/sessions/revoke", headers=root)
    await client.delete(f"{USERS}/{uid}", headers=root)
    await client.post(f"{USERS}/{uid}/restore", headers=root)
    await client.post(f"{USERS}/bulk", headers=root, json={"ids": [uid], "action": "suspend"})
    secrets = [
        PASSWORD,
        NEW_PASSWORD,
        *(t[k] for t in (first, second, third) for k in ("access_token", "refresh_token")),
        *rotated.json().values(),
    ]
    return {"root": root, "user_id": uid, "secrets": [s for s in secrets if isinstance(s, str)]}


async def test_every_listed_action_leaves_an_audit_event(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _exercise_everything(client, ctx)

    actions = set(await _actions(ctx))

    assert {
        "user.registered",
        "auth.login_succeeded",
        "auth.login_failed",
        "auth.logout",
        "auth.refresh_token_reused",
        "user.password_changed",
        "user.updated",
        "session.revoked",
        "role.created",
        "role.updated",
        "role.deleted",
        "role.granted",
        "role.revoked",
        "admin.user_updated",
        "admin.user_suspended",
        "admin.user_activated",
        "admin.sessions_revoked",
        "admin.user_deleted",
        "admin.user_restored",
    } <= actions


async def test_audit_events_never_contain_secrets(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    run = await _exercise_everything(client, ctx)
    async with ctx.sessionmaker() as db:
        hashes = list((await db.execute(select(User.password_hash))).scalars())

    dump = json.dumps(
        [
            {c.name: getattr(e, c.name) for c in AuditEvent.__table__.columns}
            for e in await _rows(ctx)
        ],
        default=str,
    )

    for secret in [*run["secrets"], *hashes]:
        assert secret not in dump
    assert "password_hash" not in dump


def test_redact_replaces_secret_looking_fields_at_any_depth() -> None:
    value = {"password": "p", "nested": [{"refresh_token": "t", "ok": 1}], "api_key": "k"}
    assert redact(value) == {
        "password": "[redacted]",
        "nested": [{"refresh_token": "[redacted]", "ok": 1}],
        "api_key": "[redacted]",
    }


async def test_failed_login_is_recorded_with_its_reason_despite_the_error(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await register(client, "ada@example.com")
    await client.post("/api/v1/auth/login", data={"username": "ada@example.com", "password": "no"})
    await client.post(
        "/api/v1/auth/login", data={"username": "nobody@example.com", "password": "x"}
    )
    async with ctx.sessionmaker() as db:
        await db.execute(
            User.__table__.update()
            .where(User.id == uuid.UUID(created["id"]))
            .values(status="suspended")
        )
        await db.commit()
    await client.post(
        "/api/v1/auth/login", data={"username": "ada@example.com", "password": PASSWORD}
    )

    failures = [e for e in await _rows(ctx) if e.action == "auth.login_failed"]

    reasons = sorted((e.details or {})["reason"] for e in failures)
    assert reasons == ["account_suspended", "unknown_email", "wrong_password"]
    assert all(e.actor_type == "anonymous" for e in failures)


async def test_event_carries_ip_user_agent_and_request_id(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"User-Agent": "agent/1.0"},
    )

    (event,) = await _rows(ctx)

    assert event.action == "user.registered"
    assert event.ip_address == "203.0.113.7"
    assert event.user_agent == "agent/1.0"
    assert event.request_id == response.headers["x-request-id"]
    assert event.actor_type == "user"
    assert str(event.actor_id) == event.target_id


async def test_admin_change_records_a_redacted_before_and_after(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root_id, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    target = await register(client, "ada@example.com")

    await client.patch(f"{USERS}/{target['id']}", headers=root, json={"status": "suspended"})

    (event,) = [e for e in await _rows(ctx) if e.action == "admin.user_suspended"]
    assert str(event.actor_id) == root_id
    assert event.target_id == target["id"]
    assert event.changes == {"before": {"status": "active"}, "after": {"status": "suspended"}}


async def test_an_event_is_rolled_back_with_its_change(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as db:
        await record(db, "role.created", at=ctx.clock.now(), actor_id=None, target_id="x")
        await db.flush()
        await db.rollback()
    assert await _rows(ctx) == []


async def test_unknown_action_is_a_programming_error(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as db:
        with pytest.raises(ValueError, match="unknown audit action"):
            await record(db, "user.exploded", at=ctx.clock.now(), actor_id=None)


# --- the admin view ------------------------------------------------------------------------


async def test_audit_events_need_audit_read(client: httpx.AsyncClient, ctx: AppContext) -> None:
    _, mod = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    response = await client.get(EVENTS, headers=mod)
    assert response.status_code == 403
    assert response.json()["errors"] == [{"permission": "audit:read"}]
    assert (await client.get(EVENTS)).status_code == 401


async def test_audit_events_filters_and_pagination(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root_id, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    start = ctx.clock.now()
    users = [await register(client, f"u{i}@example.com") for i in range(5)]
    ctx.clock.advance(seconds=10)  # type: ignore[attr-defined]
    await client.patch(f"{USERS}/{users[0]['id']}", headers=root, json={"full_name": "Zed"})

    by_action = (
        await client.get(EVENTS, headers=root, params={"action": "user.registered"})
    ).json()
    by_actor = (await client.get(EVENTS, headers=root, params={"actor_id": root_id})).json()
    by_target = (
        await client.get(EVENTS, headers=root, params={"target_id": users[0]["id"]})
    ).json()
    since = (start + timedelta(seconds=5)).isoformat()
    late = (await client.get(EVENTS, headers=root, params={"since": since})).json()
    window = (
        await client.get(
            EVENTS,
            headers=root,
            params={"until": ctx.clock.now().isoformat(), "action": "admin.user_updated"},
        )
    ).json()

    assert len(by_action["items"]) == 6  # root and the five
    assert {e["action"] for e in by_actor["items"]} == {
        "user.registered",
        "auth.login_succeeded",
        "admin.user_updated",
    }
    assert {e["action"] for e in by_target["items"]} == {"user.registered", "admin.user_updated"}
    assert by_target["items"][0]["action"] == "admin.user_updated"  # newest first
    assert [e["action"] for e in late["items"]] == ["admin.user_updated"]
    assert window["items"] == []

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(EVENTS, headers=root, params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == len(await _rows(ctx))


# --- the user's own view -------------------------------------------------------------------


async def test_user_sees_own_security_events_only(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    ada = await register(client, "ada@example.com")
    await register(client, "bob@example.com")
    ctx.clock.advance(seconds=1)  # type: ignore[attr-defined]
    await client.post("/api/v1/auth/login", data={"username": "ada@example.com", "password": "no"})
    ctx.clock.advance(seconds=1)  # type: ignore[attr-defined]
    tokens = await login(client, "ada@example.com")
    ctx.clock.advance(seconds=1)  # type: ignore[attr-defined]
    await client.patch(f"{USERS}/{ada['id']}", headers=root, json={"full_name": "By Admin"})
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    response = await client.get("/api/v1/users/me/security-events", headers=bearer)

    assert response.status_code == 200
    items = response.json()["items"]
    assert [e["action"] for e in items] == [
        "admin.user_updated",
        "auth.login_succeeded",
        "auth.login_failed",
        "user.registered",
    ]
    by_admin = next(e for e in items if e["action"] == "admin.user_updated")
    assert by_admin["by_self"] is False
    assert by_admin["ip_address"] is None
    assert (await client.get("/api/v1/users/me/security-events")).status_code == 401
