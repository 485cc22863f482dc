"""Admin broadcasts: one request, fanned out by the worker in batches."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.models import Notification, NotificationBroadcast
from atrium.notifications.broadcast import fan_out
from tests.dispatch import dispatch
from tests.factories import insert_user, signed_in, signed_in_as

BROADCAST = "/api/v1/admin/notifications/broadcast"
BODY = {"audience": "all", "title": "Maintenance", "body": "Sunday 02:00 UTC", "link": "/status"}


async def notices(ctx: AppContext) -> dict[uuid.UUID, int]:
    async with ctx.sessionmaker() as db:
        rows = await db.execute(
            select(Notification.user_id, func.count()).group_by(Notification.user_id)
        )
        return {uid: n for uid, n in rows}


async def test_broadcast_needs_the_permission(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    response = await client.post(BROADCAST, json=BODY, headers=auth)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_broadcast_reaches_every_active_account_after_dispatch(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    active = [await insert_user(ctx) for _ in range(3)]
    suspended = await insert_user(ctx, status="suspended")

    response = await client.post(BROADCAST, json=BODY, headers=admin)

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["audience"], body["category"], body["completed_at"]) == (
        "all",
        "product_updates",
        None,
    )
    assert await notices(ctx) == {}  # nothing written in the request
    await dispatch(ctx)
    assert await notices(ctx) == {uid: 1 for uid in [uuid.UUID(root), *active]}
    assert suspended not in await notices(ctx)
    async with ctx.sessionmaker() as db:
        broadcast = await db.get(NotificationBroadcast, uuid.UUID(body["id"]))
        assert broadcast is not None
        assert broadcast.completed_at is not None


async def test_role_broadcast_reaches_only_its_holders(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    await insert_user(ctx)
    body = {**BODY, "audience": "role", "role": "admin", "category": "account"}

    response = await client.post(BROADCAST, json=body, headers=admin)
    assert response.status_code == 202, response.text
    await dispatch(ctx)

    assert await notices(ctx) == {uuid.UUID(root): 1}


async def test_bad_audiences_are_refused(client: httpx.AsyncClient, ctx: AppContext) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    unknown = await client.post(
        BROADCAST, json={**BODY, "audience": "role", "role": "nope"}, headers=admin
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "role_not_found"
    missing = await client.post(BROADCAST, json={**BODY, "audience": "role"}, headers=admin)
    assert missing.status_code == 422
    bad_link = await client.post(
        BROADCAST, json={**BODY, "link": "javascript:alert(1)"}, headers=admin
    )
    assert bad_link.status_code == 422


async def test_fan_out_resumes_batch_by_batch_without_duplicates(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    for _ in range(4):
        await insert_user(ctx)
    response = await client.post(BROADCAST, json=BODY, headers=admin)
    broadcast_id = uuid.UUID(response.json()["id"])

    passes = 0
    while not await fan_out(
        ctx.sessionmaker, ctx.clock, broadcast_id, batch_size=2, budget_seconds=0
    ):
        passes += 1
    # 5 accounts, 2 per batch, one batch per pass: 3 passes write, the 4th finds none left.
    assert passes == 3
    async with ctx.sessionmaker() as db:  # a repeated batch (a redelivery) changes nothing
        await db.execute(
            NotificationBroadcast.__table__.update()
            .where(NotificationBroadcast.id == broadcast_id)
            .values(fanned_out_until=None, completed_at=None)
        )
        await db.commit()
    assert await fan_out(ctx.sessionmaker, ctx.clock, broadcast_id, batch_size=10)
    counts = await notices(ctx)
    assert len(counts) == 5
    assert set(counts.values()) == {1}


async def test_a_broadcast_is_visible_before_the_worker_reaches_the_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    reader = await signed_in(client, "ada@example.com")
    suspended = await insert_user(ctx, status="suspended")
    body = {**BODY, "category": "account"}

    response = await client.post(BROADCAST, json=body, headers=admin)
    assert response.status_code == 202, response.text
    assert await notices(ctx) == {}  # the worker has not run

    inbox = "/api/v1/users/me/notifications"
    assert (await client.get(f"{inbox}/unread-count", headers=reader)).json() == {"count": 1}
    [item] = (await client.get(inbox, headers=reader)).json()["items"]
    assert item["title"] == "Maintenance"
    assert len(await notices(ctx)) == 1  # only the account that looked; once
    # The worker's fan-out then skips it (same source) and reaches the rest.
    await dispatch(ctx)
    counts = await notices(ctx)
    assert set(counts.values()) == {1}
    assert suspended not in counts
    assert (await client.get(f"{inbox}/unread-count", headers=reader)).json() == {"count": 1}


async def test_no_catch_up_once_the_fan_out_is_complete(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    response = await client.post(BROADCAST, json=BODY, headers=admin)
    assert response.status_code == 202, response.text
    await dispatch(ctx)
    late = await signed_in(client, "late@example.com")  # registered after the fan-out

    count = await client.get("/api/v1/users/me/notifications/unread-count", headers=late)
    assert count.json() == {"count": 0}
