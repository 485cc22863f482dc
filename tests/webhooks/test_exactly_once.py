"""Two workers sharing PostgreSQL send each of 1,000 events to an endpoint exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.events.service import emit
from atrium.models import WebhookDelivery
from tests.conftest import Database
from tests.dispatch import dispatch
from tests.webhooks.conftest import Receiver, worker
from tests.webhooks.test_webhooks import admin, create

EVENTS = 1000


async def test_two_workers_deliver_each_event_once_per_endpoint(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver, database: Database
) -> None:
    if database.backend != "postgresql":
        pytest.skip("concurrent claims with SKIP LOCKED: PostgreSQL")
    auth = await admin(client, ctx)
    await create(client, auth, receiver.url, ["user.updated"])
    await dispatch(ctx)
    async with ctx.sessionmaker() as db:
        ids = {
            (await emit(db, "user.updated", subject=uuid.uuid4(), data={"fields": ["name"]})).id
            for _ in range(EVENTS)
        }
        await db.commit()
    await dispatch(ctx)

    counts = await asyncio.gather(worker(ctx).drain(), worker(ctx).drain())

    assert sum(counts) == EVENTS
    assert all(n > 0 for n in counts)  # both took part
    seen = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(seen) == {str(i) for i in ids}
    assert set(seen.values()) == {1}
    async with ctx.sessionmaker() as db:
        delivered = await db.execute(
            select(func.count()).where(WebhookDelivery.status == "delivered")
        )
        assert delivered.scalar_one() == EVENTS
