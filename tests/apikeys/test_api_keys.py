"""API keys through the API: creation (shown once), listing, revocation, authentication
with scopes ∩ permissions, expiry, and what a key can never reach."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core import apikeys
from atrium.core.clock import FrozenClock
from atrium.models import ApiKey, AuditEvent
from tests.factories import grant_role, login, register, signed_in, signed_in_as
from tests.files.test_files import PDF
from tests.mailbox import outbox

KEYS = "/api/v1/users/me/api-keys"
ME = "/api/v1/users/me"
ADMIN = "/api/v1/admin/users"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_key(
    client: httpx.AsyncClient, auth: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post(KEYS, headers=auth, json={"name": "ci", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def audit_actions(ctx: AppContext) -> list[str]:
    async with ctx.sessionmaker() as db:
        rows = (await db.execute(select(AuditEvent).order_by(AuditEvent.occurred_at))).scalars()
        return [r.action for r in rows]


# --- creation and listing ------------------------------------------------------------------


async def test_created_key_is_shown_once_and_listed_by_its_prefix(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client)

    created = await create_key(client, auth, scopes=["profiles:read"], expires_in_days=30)
    listed = (await client.get(KEYS, headers=auth)).json()

    assert apikeys.is_well_formed(created["key"])
    assert created["prefix"] == created["key"][:16]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert listed[0]["prefix"] == created["prefix"]
    assert listed[0]["scopes"] == ["profiles:read"]
    assert listed[0]["name"] == "ci"


async def test_the_key_is_stored_only_as_its_hmac(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await create_key(client, await signed_in(client))

    async with ctx.sessionmaker() as db:
        row = (await db.execute(select(ApiKey))).scalar_one()

    secret = ctx.settings.api_keys.secret_bytes()
    assert row.key_hash == apikeys.digest(created["key"], secret)
    assert created["key"].encode() not in row.key_hash


async def test_expiry_is_the_requested_number_of_days(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    created = await create_key(client, await signed_in(client), expires_in_days=7)

    assert created["expires_at"].startswith((clock.now() + timedelta(days=7)).date().isoformat())


async def test_a_key_without_expires_in_days_gets_the_longest_lifetime(
    client: httpx.AsyncClient, clock: FrozenClock, ctx: AppContext
) -> None:
    created = await create_key(client, await signed_in(client))

    days = ctx.settings.api_keys.max_expires_in_days
    assert created["expires_at"].startswith((clock.now() + timedelta(days=days)).date().isoformat())


async def test_a_lifetime_beyond_the_maximum_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        KEYS, headers=await signed_in(client), json={"name": "x", "expires_in_days": 400}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_an_unknown_scope_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        KEYS, headers=await signed_in(client), json={"name": "x", "scopes": ["users:fly"]}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "unknown_scope"


async def test_a_scope_the_owner_does_not_hold_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        KEYS, headers=await signed_in(client), json={"name": "x", "scopes": ["users:read"]}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "scope_not_held"


async def test_an_account_holds_at_most_max_per_user_keys(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ctx.settings.api_keys.max_per_user = 2
    auth = await signed_in(client)
    await create_key(client, auth)
    await create_key(client, auth)

    response = await client.post(KEYS, headers=auth, json={"name": "third"})

    assert response.status_code == 409
    assert response.json()["code"] == "api_key_limit_reached"


async def test_creation_is_audited_and_the_owner_is_emailed(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    created = await create_key(client, await signed_in(client, "ada@example.com"))

    mails = await outbox(ctx, "api_key_created")
    assert [m.to_address for m in mails] == ["ada@example.com"]
    assert mails[0].context["prefix"] == created["prefix"]
    assert created["key"] not in str(mails[0].context)
    assert "api_key.created" in await audit_actions(ctx)


# --- authenticating with a key -------------------------------------------------------------


async def test_a_key_authenticates_get_users_me(client: httpx.AsyncClient) -> None:
    created = await create_key(client, await signed_in(client, "ada@example.com"))

    response = await client.get(ME, headers=bearer(created["key"]))

    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


async def test_a_key_with_a_bad_checksum_is_refused_before_any_lookup(
    client: httpx.AsyncClient, ctx: AppContext, queries: Any
) -> None:
    key = (await create_key(client, await signed_in(client)))["key"]
    forged = key[:-1] + ("0" if key[-1] != "0" else "1")
    looked_up: list[bytes] = []

    async def spy(keys: Any) -> Any:
        looked_up.extend(keys)
        return [None] * len(keys)

    original = ctx.cache.get_many
    ctx.cache.get_many = spy  # type: ignore[method-assign]
    try:
        before = queries.count
        response = await client.get(ME, headers=bearer(forged))
    finally:
        ctx.cache.get_many = original  # type: ignore[method-assign]

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert queries.count == before
    assert looked_up == []


async def test_an_unknown_well_formed_key_is_refused(client: httpx.AsyncClient) -> None:
    await signed_in(client)

    response = await client.get(ME, headers=bearer(apikeys.generate()))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_an_expired_key_is_refused(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    key = (await create_key(client, await signed_in(client), expires_in_days=1))["key"]
    assert (await client.get(ME, headers=bearer(key))).status_code == 200

    clock.advance(days=1, seconds=1)
    response = await client.get(ME, headers=bearer(key))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_a_revoked_key_is_refused_at_once(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    created = await create_key(client, auth)
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200  # cached

    revoked = await client.delete(f"{KEYS}/{created['id']}", headers=auth)
    response = await client.get(ME, headers=bearer(created["key"]))

    assert revoked.status_code == 204
    assert response.status_code == 401
    assert (await client.get(KEYS, headers=auth)).json() == []
    assert "api_key.revoked" in await audit_actions(ctx)


async def test_revoking_an_unknown_or_foreign_key_is_404(client: httpx.AsyncClient) -> None:
    ada = await signed_in(client, "ada@example.com")
    bob = await signed_in(client, "bob@example.com")
    created = await create_key(client, ada)

    response = await client.delete(f"{KEYS}/{created['id']}", headers=bob)

    assert response.status_code == 404
    assert response.json()["code"] == "api_key_not_found"


# --- scopes ∩ the owner's permissions ------------------------------------------------------


async def test_a_key_uses_a_permission_only_when_scoped_and_held(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    scoped = await create_key(client, admin, scopes=["users:read"])
    unscoped = await create_key(client, admin, scopes=["profiles:read"])

    assert (await client.get(ADMIN, headers=bearer(scoped["key"]))).status_code == 200
    denied = await client.get(ADMIN, headers=bearer(unscoped["key"]))
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"


async def test_a_key_loses_a_scope_the_owner_no_longer_holds(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    uid, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    key = (await create_key(client, admin, scopes=["users:read"]))["key"]
    assert (await client.get(ADMIN, headers=bearer(key))).status_code == 200
    root_id, root = await signed_in_as(client, ctx, "super@example.com", "superadmin")

    taken = await client.delete(f"{ADMIN}/{uid}/roles/admin", headers=root)
    response = await client.get(ADMIN, headers=bearer(key))

    assert taken.status_code == 200, taken.text
    assert response.status_code == 403
    assert root_id != uid


async def test_a_key_without_files_manage_scope_cannot_read_another_users_file(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await signed_in(client, "ada@example.com")
    upload = await client.post(
        "/api/v1/files",
        headers=ada,
        files={"file": ("r.pdf", PDF, "application/pdf")},
    )
    assert upload.status_code == 201, upload.text
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    unscoped = (await create_key(client, admin, scopes=[]))["key"]
    scoped = (await create_key(client, admin, scopes=["files:manage"]))["key"]
    url = f"/api/v1/files/{upload.json()['id']}"

    assert (await client.get(url, headers=admin)).status_code == 200
    assert (await client.get(url, headers=bearer(unscoped))).status_code == 404
    assert (await client.get(url, headers=bearer(scoped))).status_code == 200


# --- what a key can never reach ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", KEYS, None),
        ("POST", KEYS, {"name": "from a key"}),
        ("POST", f"{ME}/password", {"current_password": "x", "new_password": "y" * 12}),
        ("POST", f"{ME}/email", {"new_email": "new@example.com", "password": "x"}),
        ("DELETE", ME, {"password": "x"}),
        ("GET", f"{ME}/sessions", None),
        ("POST", "/api/v1/auth/logout", None),
    ],
)
async def test_a_key_never_reaches_key_management_nor_sensitive_operations(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    key = (await create_key(client, await signed_in(client)))["key"]

    response = await client.request(method, path, headers=bearer(key), json=body)

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "api_key_not_allowed"


# --- the owner suspended or deleted; administrators -----------------------------------------


async def test_suspending_the_owner_refuses_the_key_at_once_and_reactivating_restores_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    user = await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    key = (await create_key(client, {"Authorization": f"Bearer {tokens['access_token']}"}))["key"]
    assert (await client.get(ME, headers=bearer(key))).status_code == 200  # cached

    suspended = await client.patch(
        f"{ADMIN}/{user['id']}", headers=root, json={"status": "suspended"}
    )
    refused = await client.get(ME, headers=bearer(key))
    await client.patch(f"{ADMIN}/{user['id']}", headers=root, json={"status": "active"})
    restored = await client.get(ME, headers=bearer(key))

    assert suspended.status_code == 200
    assert refused.status_code == 401
    assert restored.status_code == 200


async def test_deleting_the_owner_refuses_the_key_at_once(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    key = (await create_key(client, auth))["key"]
    assert (await client.get(ME, headers=bearer(key))).status_code == 200  # cached

    deleted = await client.request(
        "DELETE", ME, headers=auth, json={"password": "correct horse battery staple"}
    )
    response = await client.get(ME, headers=bearer(key))

    assert deleted.status_code == 202  # deletion scheduled; the account is hidden at once
    assert response.status_code == 401


async def test_an_admin_lists_and_revokes_a_users_keys_audited(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    user = await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    created = await create_key(client, {"Authorization": f"Bearer {tokens['access_token']}"})
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200

    listed = await client.get(f"{ADMIN}/{user['id']}/api-keys", headers=root)
    revoked = await client.delete(f"{ADMIN}/{user['id']}/api-keys/{created['id']}", headers=root)

    assert [k["id"] for k in listed.json()] == [created["id"]]
    assert revoked.status_code == 204
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 401
    assert "admin.api_key_revoked" in await audit_actions(ctx)


async def test_listing_a_users_keys_needs_users_read(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "ada@example.com")
    other = await signed_in(client, "bob@example.com")

    response = await client.get(f"{ADMIN}/{user['id']}/api-keys", headers=other)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_revoking_a_users_key_needs_sessions_revoke(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "ada@example.com")
    mod_id, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    await grant_role(ctx, mod_id, "moderator")
    created = await create_key(
        client,
        {"Authorization": f"Bearer {(await login(client, 'ada@example.com'))['access_token']}"},
    )

    response = await client.delete(
        f"{ADMIN}/{user['id']}/api-keys/{created['id']}", headers=moderator
    )

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# --- last use ------------------------------------------------------------------------------


async def test_last_use_is_recorded_at_most_once_per_interval(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    key = (await create_key(client, auth))["key"]
    # Start at the beginning of a one-minute window.
    clock.advance(seconds=60 - clock.now().timestamp() % 60 + 1)

    await client.get(ME, headers=bearer(key))
    first = (await client.get(KEYS, headers=auth)).json()[0]
    clock.advance(seconds=10)
    await client.get(ME, headers=bearer(key))
    same = (await client.get(KEYS, headers=auth)).json()[0]
    clock.advance(seconds=60)
    await client.get(ME, headers=bearer(key))
    later = (await client.get(KEYS, headers=auth)).json()[0]

    assert first["last_used_at"] is not None
    assert first["last_used_ip"] == "203.0.113.7"
    assert same["last_used_at"] == first["last_used_at"]
    assert later["last_used_at"] > first["last_used_at"]
