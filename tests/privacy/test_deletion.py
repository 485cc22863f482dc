"""Deletion with a grace period (GDPR art. 17): DELETE /users/me revokes and hides at once,
the emailed link and the sign-in cancel it, the erasure job removes everything at the end
(audit events kept under a pseudonym; afterwards no table holds the email, name or
username), a grace period of 0 erases at once, and an administrator's soft delete is purged
by the same rules."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from atrium.admin.purge import purge_expired
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import (
    ApiKey,
    AuditEvent,
    Base,
    Event,
    OutboxMessage,
    StoredFile,
    TrustedDevice,
    User,
)
from atrium.privacy.jobs import erase_due_accounts
from tests.factories import PASSWORD, login, register, signed_in_as
from tests.privacy.helpers import PDF, job_context

ME = "/api/v1/users/me"
CANCEL = "/api/v1/auth/deletion/cancel"


class Owner:
    def __init__(self, user: dict[str, Any], email: str, auth: dict[str, str]) -> None:
        self.id = user["id"]
        self.uuid = uuid.UUID(user["id"])
        self.email = email
        self.auth = auth
        self.username = ""
        self.full_name = ""


async def owner(client: httpx.AsyncClient, ctx: AppContext, tag: str = "ada") -> Owner:
    """An account with a name, a username, a file, an API key and a trusted device."""
    email = f"{tag}.lovelace@example.com"
    user = await register(client, email)
    tokens = await login(client, email)
    o = Owner(user, email, {"Authorization": f"Bearer {tokens['access_token']}"})
    o.full_name, o.username = f"Augusta {tag.title()} King", f"{tag}_byron"
    r = await client.patch(ME, json={"full_name": o.full_name}, headers=o.auth)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{ME}/profile", json={"username": o.username}, headers=o.auth)
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/v1/files", files={"file": ("notes.pdf", PDF, "application/pdf")}, headers=o.auth
    )
    assert r.status_code == 201, r.text
    now = ctx.clock.now()
    async with ctx.sessionmaker() as db:
        db.add(
            ApiKey(
                user_id=o.uuid,
                name="ci",
                prefix="atr_ci",
                key_hash=hashlib.sha256(f"k-{tag}".encode()).digest(),
                scopes=[],
                created_at=now,
            )
        )
        db.add(
            TrustedDevice(
                user_id=o.uuid,
                token_hash=hashlib.sha256(f"d-{tag}".encode()).digest(),
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
        await db.commit()
    return o


async def delete_me(client: httpx.AsyncClient, o: Owner) -> httpx.Response:
    return await client.request("DELETE", ME, json={"password": PASSWORD}, headers=o.auth)


async def cancel_link_token(ctx: AppContext, email: str) -> str:
    async with ctx.sessionmaker() as db:
        mails = (
            await db.scalars(select(OutboxMessage).where(OutboxMessage.to_address == email))
        ).all()
    (mail,) = [m for m in mails if m.context.get("title") == "Your account will be deleted"]
    link = mail.context["link"]
    assert urlsplit(link).path == "/cancel-deletion"
    return parse_qs(urlsplit(link).query)["token"][0]


async def test_delete_me_revokes_at_once_hides_the_account_and_schedules_erasure(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    o = await owner(client, ctx)
    r = await delete_me(client, o)
    assert r.status_code == 202, r.text
    due = ctx.clock.now() + timedelta(days=30)
    answered = r.json()["deletion_due_at"].replace("Z", "+00:00")
    assert datetime.fromisoformat(answered) == due
    assert (await client.get(ME, headers=o.auth)).status_code == 401
    assert (await client.get(f"/api/v1/profiles/{o.username}")).status_code == 404
    async with ctx.sessionmaker() as db:
        keys = (await db.scalars(select(ApiKey).where(ApiKey.user_id == o.uuid))).all()
        devices = (
            await db.scalars(select(TrustedDevice).where(TrustedDevice.user_id == o.uuid))
        ).all()
        user = await db.get(User, o.uuid)
    assert [k.revoked_reason for k in keys] == ["account_deleted"]
    assert devices == []
    assert user is not None
    assert user.deletion_due_at == due
    assert await cancel_link_token(ctx, o.email)


async def test_sign_in_during_the_grace_period_offers_only_to_cancel(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    o = await owner(client, ctx)
    await delete_me(client, o)
    r = await client.post("/api/v1/auth/login", data={"username": o.email, "password": PASSWORD})
    assert r.status_code == 403
    problem = r.json()
    assert problem["code"] == "account_deletion_pending"
    assert problem["cancel_url"] == CANCEL
    wrong = await client.post(
        "/api/v1/auth/login", data={"username": o.email, "password": "x" * 12}
    )
    assert wrong.status_code == 401  # the wrong password learns nothing of the deletion
    assert (await client.post(CANCEL, json={"token": problem["cancel_token"]})).status_code == 204
    await login(client, o.email)
    assert (await client.get(f"/api/v1/profiles/{o.username}")).status_code == 200


async def test_the_emailed_link_cancels_the_deletion_once(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    o = await owner(client, ctx)
    await delete_me(client, o)
    token = await cancel_link_token(ctx, o.email)
    clock.advance(days=29)
    assert (await client.post(CANCEL, json={"token": token})).status_code == 204
    again = await client.post(CANCEL, json={"token": token})
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"
    clock.advance(days=2)
    assert await erase_due_accounts(job_context(ctx), ctx.storage) == 0
    await login(client, o.email)


async def rows_mentioning(ctx: AppContext, *needles: str) -> list[str]:
    """``table.column`` of every value, in every table of the metadata, that contains one
    of ``needles`` (case-insensitive)."""
    found = []
    lowered = [n.lower() for n in needles]
    async with ctx.sessionmaker() as db:
        for table in Base.metadata.sorted_tables:
            for row in (await db.execute(select(table))).mappings():
                for column, value in row.items():
                    text = (
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    ).lower()
                    if any(n in text for n in lowered):
                        found.append(f"{table.name}.{column}")
    return found


async def test_erasure_at_the_end_of_the_grace_period_leaves_no_trace_but_a_pseudonym(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    o = await owner(client, ctx)
    other = await owner(client, ctx, "bob")
    # An administrator acts on the account: the trail keeps that too, pseudonymised.
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    assert (
        await client.post(f"/api/v1/admin/users/{o.id}/exports", headers=admin)
    ).status_code == 202
    async with ctx.sessionmaker() as db:
        keys = (
            await db.scalars(select(StoredFile.storage_key).where(StoredFile.owner_id == o.uuid))
        ).all()
        own_events = len(
            (
                await db.scalars(
                    select(AuditEvent).where(
                        (AuditEvent.actor_id == o.uuid) | (AuditEvent.target_id == o.id)
                    )
                )
            ).all()
        )
    assert keys
    assert own_events >= 4
    await delete_me(client, o)
    assert await rows_mentioning(ctx, o.email, o.full_name, o.username)  # still there

    clock.advance(days=29, hours=23)
    assert await erase_due_accounts(job_context(ctx), ctx.storage) == 0
    clock.advance(hours=1)
    assert await erase_due_accounts(job_context(ctx), ctx.storage) == 1

    assert await rows_mentioning(ctx, o.email, o.full_name, o.username) == []
    assert not await ctx.storage.exists(keys[0])
    async with ctx.sessionmaker() as db:
        (erased,) = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "user.erased"))
        ).all()
        pseudonym = erased.target_id
        assert pseudonym is not None
        kept = (
            await db.scalars(
                select(AuditEvent).where(
                    (AuditEvent.actor_id == uuid.UUID(pseudonym))
                    | (AuditEvent.target_id == pseudonym)
                )
            )
        ).all()
        deleted = (await db.scalars(select(Event).where(Event.type == "user.deleted"))).all()
        by_id = (
            await db.scalars(
                select(AuditEvent).where(
                    (AuditEvent.actor_id == o.uuid) | (AuditEvent.target_id == o.id)
                )
            )
        ).all()
    assert by_id == []
    assert len(kept) == own_events + 2  # + the deletion request and the erasure
    assert all(e.ip_address is None for e in kept if e.actor_id == uuid.UUID(pseudonym))
    assert [(e.subject_id, e.data) for e in deleted] == [(o.id, {"by_self": True, "erased": True})]
    # The other account is untouched.
    assert await rows_mentioning(ctx, other.email)
    await login(client, other.email)


async def test_a_grace_period_of_zero_erases_at_once(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ctx.settings.privacy.deletion_grace_days = 0
    o = await owner(client, ctx)
    r = await delete_me(client, o)
    assert r.status_code == 202
    assert r.json() == {"deletion_due_at": None}
    assert await rows_mentioning(ctx, o.email, o.full_name, o.username) == []


async def test_admin_soft_delete_is_purged_by_the_same_erasure(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    o = await owner(client, ctx)
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    r = await client.delete(f"/api/v1/admin/users/{o.id}", headers=admin)
    assert r.status_code == 204, r.text
    clock.advance(days=31)
    async with ctx.sessionmaker() as db:
        purged = await purge_expired(
            db,
            now=clock.now(),
            retention_days=30,
            storage=ctx.storage,
            avatar_sizes=ctx.settings.avatars.sizes,
        )
        await db.commit()
    assert purged == 1
    assert await rows_mentioning(ctx, o.email, o.full_name, o.username) == []
    async with ctx.sessionmaker() as db:
        actions = (
            await db.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.action.in_(["user.erased", "admin.user_purged"])
                )
            )
        ).all()
    assert sorted(actions) == ["admin.user_purged", "user.erased"]
