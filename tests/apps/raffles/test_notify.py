"""Buyers are told: a receipt by email (the outbox) when tickets are issued; the winners
after the draw and every paying buyer of a cancelled raffle through domain events that the
platform's notifications turn into notices (in-app and email)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.mail.render import render_parts
from atrium.models import OutboxMessage
from tests.apps.raffles.conftest import buy, create_raffle, run_jobs, verified_buyer
from tests.apps.raffles.fake_stripe import FakeStripe
from tests.apps.raffles.fakes import FakeDrand
from tests.factories import signed_in_as


async def _mail(ctx: AppContext, template: str) -> list[OutboxMessage]:
    async with ctx.sessionmaker() as db:
        rows = await db.execute(select(OutboxMessage).where(OutboxMessage.template == template))
        return list(rows.scalars())


async def _notices(ctx: AppContext, event_type: str) -> list[dict[str, Any]]:
    """Dispatch the pending events to the notifications consumer; the queued notice emails
    of ``event_type`` (their context), checking the events were written."""
    from atrium.events.dispatcher import EventDispatcher
    from atrium.models import Event
    from atrium.notifications.consumer import notification_consumer

    async with ctx.sessionmaker() as db:
        events = (await db.execute(select(Event).where(Event.type == event_type))).scalars().all()
    assert events, event_type
    consumer = notification_consumer(ctx.settings, ctx.clock, ctx.bus)
    await EventDispatcher(ctx.sessionmaker, ctx.settings, ctx.clock, [consumer]).run_once()
    return [{"to": m.to_address, **m.context} for m in await _mail(ctx, "notification")]


async def _paid(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe, **raffle: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    created = await create_raffle(client, ctx, admin, **raffle)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    purchase = (await buy(client, created["id"], ada, 2)).json()
    stripe_api.succeed(purchase["payment_intent_id"])
    await stripe_api.deliver(client)
    return created, admin


async def test_issued_tickets_send_a_receipt(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    await _paid(client, ctx, stripe_api, title="Gold watch")

    (receipt,) = await _mail(ctx, "raffles/receipt")
    rendered = render_parts(
        receipt.template, receipt.locale, {"product": "Atrium", **receipt.context}
    )

    assert receipt.to_address == "ada@example.com"
    assert rendered.subject == "Your tickets for Gold watch"
    assert "Your ticket numbers: 1, 2" in rendered.text
    assert "&ldquo;Gold watch&rdquo;" in rendered.html


async def test_the_winner_is_told(
    client: httpx.AsyncClient,
    ctx: AppContext,
    app: Any,
    clock: FrozenClock,
    stripe_api: FakeStripe,
    drand: FakeDrand,
) -> None:
    raffle, _ = await _paid(client, ctx, stripe_api, prizes=1)
    clock.advance(days=1, seconds=10)
    drand.latest = raffle["beacon_round"]

    await run_jobs(app)
    (notice,) = await _notices(ctx, "raffles.ticket_won")
    draw = (await client.get(f"/api/v1/raffles/{raffle['id']}/draw")).json()

    assert notice["to"] == "ada@example.com"
    assert notice["title"] == f"You won: {raffle['title']}"
    assert f"Your ticket {draw['winners'][0]['number']} won" in notice["body"]


async def test_cancelling_tells_every_paying_buyer(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, admin = await _paid(client, ctx, stripe_api)

    await client.post(f"/api/v1/admin/raffles/{raffle['id']}/cancel", headers=admin)
    (notice,) = await _notices(ctx, "raffles.purchase_refunding")

    assert notice["to"] == "ada@example.com"
    assert "1000 EUR" in notice["body"]
