"""Events are written in the transaction of the change, and the services emit them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.db import unit_of_work
from atrium.events.catalogue import CATALOGUE
from atrium.events.service import emit
from atrium.models import Event
from tests.factories import PASSWORD, login, register, signed_in_as


async def events(ctx: AppContext, type_: str | None = None) -> list[Event]:
    async with ctx.sessionmaker() as db:
        query = select(Event).order_by(Event.occurred_at, Event.id)
        if type_ is not None:
            query = query.where(Event.type == type_)
        return list((await db.execute(query)).scalars())


async def test_event_is_written_with_the_committed_change(ctx: AppContext) -> None:
    subject = uuid.uuid4()
    async with unit_of_work(ctx.sessionmaker) as db:
        await emit(db, "user.restored", subject=subject, at=ctx.clock.now())

    [row] = await events(ctx)
    assert (row.type, row.version, row.subject_type) == ("user.restored", 1, "user")
    assert row.subject_id == str(subject)
    assert (row.actor_type, row.actor_id) == ("system", None)
    assert row.dispatched_at is None


async def test_rolled_back_change_leaves_no_event(ctx: AppContext) -> None:
    class Boom(Exception):
        pass

    async def change_that_fails() -> None:
        async with unit_of_work(ctx.sessionmaker) as db:
            await emit(db, "user.restored", subject=uuid.uuid4())
            await db.flush()  # written in the transaction ...
            assert len((await db.execute(select(Event))).all()) == 1
            raise Boom  # ... which then rolls back

    with pytest.raises(Boom):
        await change_that_fails()

    assert await events(ctx) == []


async def test_failed_registration_leaves_no_event(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    again = await client.post(
        "/api/v1/auth/register", json={"email": "ADA@example.com", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert len(await events(ctx, "user.created")) == 1


async def test_sign_up_sign_in_and_out_emit_their_events(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user = await register(client, "ada@example.com")
    clock.advance(seconds=1)
    tokens = await login(client, "ada@example.com", user_agent="Firefox")
    clock.advance(seconds=1)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert out.status_code == 204, out.text

    rows = await events(ctx)
    assert [r.type for r in rows] == ["user.created", "session.created", "session.revoked"]
    created, opened, revoked = rows
    assert created.data == {"email": "ada@example.com", "via": "registration"}
    assert opened.data["user_id"] == user["id"]
    assert opened.data["user_agent"] == "Firefox"
    assert revoked.subject_id == opened.subject_id
    assert revoked.data == {"user_id": user["id"], "reason": "logout"}
    assert str(revoked.actor_id) == user["id"]
    # No token, hash or password reached any event.
    text = json.dumps([r.data for r in rows])
    for secret in (tokens["access_token"], tokens["refresh_token"], PASSWORD, "argon2"):
        assert secret not in text


async def test_admin_actions_emit_suspension_role_and_deletion_events(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    admin_id, headers = await signed_in_as(client, ctx, "root@example.com", "admin")
    user = await register(client, "ada@example.com")
    clock.advance(seconds=1)
    await login(client, "ada@example.com")
    uid = user["id"]
    clock.advance(seconds=1)

    suspend = await client.patch(
        f"/api/v1/admin/users/{uid}", json={"status": "suspended"}, headers=headers
    )
    assert suspend.status_code == 200, suspend.text
    clock.advance(seconds=1)
    grant = await client.put(f"/api/v1/admin/users/{uid}/roles/moderator", headers=headers)
    assert grant.status_code == 200, grant.text
    clock.advance(seconds=1)
    delete = await client.delete(f"/api/v1/admin/users/{uid}", headers=headers)
    assert delete.status_code == 204, delete.text

    mine = [r for r in await events(ctx) if r.subject_id == uid or r.data.get("user_id") == uid]
    types = [r.type for r in mine]
    assert types[:2] == ["user.created", "session.created"]
    assert "user.suspended" in types
    assert types.index("session.revoked") > types.index("session.created")
    assert "role.granted" in types
    assert types[-1] == "user.deleted"
    for row in mine[2:]:
        assert str(row.actor_id) == admin_id


async def test_every_stored_event_matches_its_schema(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await signed_in_as(client, ctx, "root@example.com", "admin")
    stored = await events(ctx)
    assert stored, "signing up an administrator stored no event"
    for row in stored:
        CATALOGUE[row.type].validator.validate(row.data)  # raises ValidationError
