"""Retries with backoff and jitter under a fake clock; disabling after failures; the
delivery log and the retry route."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
from sqlalchemy import select

from atrium.config import Settings
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.clock import FrozenClock
from atrium.models import AuditEvent, Notification, OutboxMessage, WebhookDelivery
from tests.dispatch import dispatch
from tests.factories import login
from tests.webhooks.conftest import Receiver, worker
from tests.webhooks.test_webhooks import HOOKS, admin, create, emit_one


async def delivery(ctx: AppContext, event_id: uuid.UUID) -> WebhookDelivery:
    async with ctx.sessionmaker() as db:
        row = (
            await db.execute(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id))
        ).scalar_one()
        return row


async def test_failed_attempts_are_retried_with_backoff_and_jitter_and_re_signed(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver, clock: FrozenClock
) -> None:
    auth = await admin(client, ctx)
    hook = await create(client, auth, receiver.url, ["user.updated"])
    receiver.statuses = [500, 503]
    event_id = await emit_one(ctx)
    await dispatch(ctx)
    base = ctx.settings.webhooks.backoff_base_seconds
    jitter = ctx.settings.webhooks.backoff_jitter

    attempted_at: list[datetime] = []
    for n in (1, 2):
        attempted_at.append(clock.now())
        assert await worker(ctx).drain() == 1
        row = await delivery(ctx, event_id)
        assert (row.status, row.attempts) == ("pending", n)
        delay = (row.next_attempt_at - clock.now()).total_seconds()
        expected = base * 2 ** (n - 1)
        assert expected * (1 - jitter) <= delay <= expected * (1 + jitter)
        assert await worker(ctx).drain() == 0  # not due yet
        clock.advance(seconds=delay)
    attempted_at.append(clock.now())
    assert await worker(ctx).drain() == 1

    row = await delivery(ctx, event_id)
    assert (row.status, row.attempts) == ("delivered", 3)
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {str(event_id)}
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == [int(at.timestamp()) for at in attempted_at]
    assert len({r.headers["webhook-signature"] for r in receiver.requests}) == 3
    log = (await client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=auth)).json()
    [entry] = [d for d in log if d["event_id"] == str(event_id)]
    assert [a["status_code"] for a in entry["attempt_log"]] == [500, 503, 204]
    assert all(a["latency_ms"] >= 0 for a in entry["attempt_log"])


async def test_the_default_schedule_spans_about_three_days(settings: Settings) -> None:
    from atrium.core.leasing import backoff_seconds

    wh = settings.webhooks
    total = sum(
        backoff_seconds(n, base=wh.backoff_base_seconds, maximum=wh.backoff_max_seconds)
        for n in range(1, wh.max_attempts)
    )
    assert 2.5 * 86400 <= total <= 3.5 * 86400


async def test_an_endpoint_is_disabled_after_consecutive_failures_and_managers_told(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver, clock: FrozenClock
) -> None:
    ctx.settings.webhooks.max_attempts = 2
    ctx.settings.webhooks.disable_after_failures = 2
    auth = await admin(client, ctx)
    hook = await create(client, auth, receiver.url, ["user.updated"])
    await dispatch(ctx)  # the admin's own events: not for this endpoint
    receiver.default = 500
    disabled_before = metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get()
    first = await emit_one(ctx)
    second = await emit_one(ctx)
    await dispatch(ctx)

    for _ in range(3):
        await worker(ctx).drain()
        clock.advance(hours=1)

    assert (await delivery(ctx, first)).status == "failed"
    assert (await delivery(ctx, second)).status == "failed"
    assert len(receiver.requests) == 4
    tokens = await login(client, "root@example.com")  # the clock moved past the access token
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    state = (await client.get(f"{HOOKS}/{hook['id']}", headers=auth)).json()
    assert state["enabled"] is False
    assert state["consecutive_failures"] == 2
    assert "2 consecutive deliveries failed" in state["disabled_reason"]
    assert metrics.WEBHOOK_ENDPOINTS_DISABLED._value.get() == disabled_before + 1
    async with ctx.sessionmaker() as db:
        notices = list((await db.execute(select(Notification.title))).scalars())
        mails = list((await db.execute(select(OutboxMessage.template))).scalars())
        audit = list(
            (
                await db.execute(
                    select(AuditEvent.action).where(AuditEvent.action == "webhook.disabled")
                )
            ).scalars()
        )
    assert notices == ["A webhook endpoint was disabled"]
    assert "notification" in mails
    assert audit == ["webhook.disabled"]

    # Disabled: a new event is not queued for it.
    third = await emit_one(ctx)
    await dispatch(ctx)
    async with ctx.sessionmaker() as db:
        queued = await db.execute(select(WebhookDelivery).where(WebhookDelivery.event_id == third))
        assert queued.first() is None

    # Re-enabled and fixed: a failed delivery is retried on request.
    receiver.default = 204
    enabled = await client.patch(f"{HOOKS}/{hook['id']}", json={"enabled": True}, headers=auth)
    assert (enabled.json()["enabled"], enabled.json()["consecutive_failures"]) == (True, 0)
    row = await delivery(ctx, first)
    retried = await client.post(f"{HOOKS}/{hook['id']}/deliveries/{row.id}/retry", headers=auth)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    again = await client.post(f"{HOOKS}/{hook['id']}/deliveries/{row.id}/retry", headers=auth)
    assert again.status_code == 409
    assert again.json()["code"] == "webhook_delivery_in_progress"
    assert await worker(ctx).drain() == 1
    assert (await delivery(ctx, first)).status == "delivered"
