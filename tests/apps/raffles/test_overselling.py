"""No overselling, ever: concurrent purchases for the last tickets issue exactly as many
tickets as remain, the per-account maximum holds, and one Idempotency-Key creates one
PaymentIntent. The decisive runs are on PostgreSQL (row locks taken by the conditional
UPDATE); SQLite serialises its writers and runs them too."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from atrium.config import Settings
from atrium.context import AppContext
from tests.apps.raffles.conftest import buy, create_raffle, issue_tickets, verified_buyer
from tests.apps.raffles.fake_stripe import FakeStripe
from tests.conftest import Database
from tests.factories import signed_in_as


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A thousand requests queue for connections and for the raffle row on a small shared
    # machine: wait rather than answer 503.
    settings.database.pool_size = 20
    settings.database.pool_timeout_seconds = 300
    settings.database.statement_timeout_seconds = 120
    settings.database.command_timeout_seconds = 120
    return settings


def _attempts(database: Database) -> int:
    # SQLite's writers queue on one lock with a fixed 5 s busy timeout: fewer at once (still
    # two and a half buyers for each of the last 10 tickets; 60 gave 503s on a loaded machine).
    return 1000 if database.backend == "postgresql" else 25


async def test_concurrent_attempts_for_the_last_10_tickets_issue_exactly_10(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe, database: Database
) -> None:
    admin_id, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin, total_tickets=1010, max_per_account=1010)
    await issue_tickets(ctx, raffle["id"], admin_id, 1000)
    buyers = [(await verified_buyer(client, ctx, f"b{i}@example.com"))[1] for i in range(20)]
    attempts = _attempts(database)

    answers = await asyncio.gather(
        *(buy(client, raffle["id"], buyers[i % len(buyers)], 1) for i in range(attempts))
    )
    created = [a.json() for a in answers if a.status_code == 201]
    for purchase in created:
        stripe_api.succeed(purchase["payment_intent_id"])
    events = stripe_api.take_events()
    delivered = await asyncio.gather(*(stripe_api.deliver(client, [e]) for e in events))
    ledger = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/api/v1/raffles/{raffle['id']}/ledger", params=params)).json()
        ledger += [e["number"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    detail = (await client.get(f"/api/v1/raffles/{raffle['id']}")).json()

    assert Counter(a.status_code for a in answers) == {201: 10, 409: attempts - 10}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"tickets_unavailable"}
    assert sorted(r[0].json()["outcome"] for r in delivered) == ["issued"] * 10
    assert ledger == list(range(1, 1011))
    assert (detail["tickets_sold"], detail["tickets_remaining"]) == (1010, 0)


async def test_the_per_account_maximum_holds_under_concurrency(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin, total_tickets=100, max_per_account=5)
    _, buyer = await verified_buyer(client, ctx, "ada@example.com")

    answers = await asyncio.gather(
        *(buy(client, raffle["id"], buyer, 1 + i % 2) for i in range(60))
    )
    reserved = sum(a.json()["quantity"] for a in answers if a.status_code == 201)
    refusals = {a.json()["code"] for a in answers if a.status_code != 201}

    assert reserved in (4, 5)  # 5 unless the last ticket was asked for in pairs only
    assert refusals == {"account_limit_reached"}
    assert len(stripe_api.intents) == sum(a.status_code == 201 for a in answers)


async def test_one_idempotency_key_makes_one_payment_intent_under_concurrency(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin)
    _, buyer = await verified_buyer(client, ctx, "ada@example.com")

    answers = await asyncio.gather(
        *(buy(client, raffle["id"], buyer, 2, key="same") for _ in range(20))
    )
    bodies = {a.text for a in answers if a.status_code == 201}

    assert len(stripe_api.intents) == 1
    assert len(bodies) == 1
    assert {a.status_code for a in answers} <= {201, 409}
    assert {a.json()["code"] for a in answers if a.status_code == 409} <= {"idempotency_key_in_use"}
    assert (await client.get(f"/api/v1/raffles/{raffle['id']}")).json()["tickets_remaining"] == 98
