"""Buying tickets with Stripe (the real library against a fake Stripe API on loopback):
reservations, idempotent replays, webhooks processed once in any order, tickets numbered
1..N, expiry, late payments, refunds."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.apps.raffles.conftest import buy, create_raffle, run_jobs, verified_buyer
from tests.apps.raffles.fake_stripe import FakeStripe
from tests.factories import login, signed_in, signed_in_as

PUBLIC = "/api/v1/raffles"
ADMIN = "/api/v1/admin/raffles"


async def _setup(
    client: httpx.AsyncClient, ctx: AppContext, **raffle: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    return await create_raffle(client, ctx, admin, **raffle), admin


async def _remaining(client: httpx.AsyncClient, raffle_id: str) -> int:
    body: dict[str, Any] = (await client.get(f"{PUBLIC}/{raffle_id}")).json()
    return int(body["tickets_remaining"])


async def test_a_purchase_reserves_the_tickets_and_answers_the_payment_intent(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")

    response = await buy(client, raffle["id"], buyer, 3)
    body = response.json()
    intent = stripe_api.intents[body["payment_intent_id"]]

    assert response.status_code == 201, response.text
    assert body["status"] == "reserved"
    assert body["amount"] == 1500
    assert body["client_secret"] == intent["client_secret"]
    assert intent["amount"] == 1500
    assert intent["currency"] == "eur"
    assert intent["metadata"]["purchase_id"] == body["id"]
    assert await _remaining(client, raffle["id"]) == 97


async def test_the_same_idempotency_key_replays_the_same_answer(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")

    first = await buy(client, raffle["id"], buyer, 2, key="order-1")
    second = await buy(client, raffle["id"], buyer, 2, key="order-1")
    other_request = await buy(client, raffle["id"], buyer, 3, key="order-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(stripe_api.intents) == 1
    assert other_request.status_code == 422
    assert other_request.json()["code"] == "idempotency_key_reused"
    assert await _remaining(client, raffle["id"]) == 98


async def test_a_refusal_is_replayed_too(client: httpx.AsyncClient, ctx: AppContext) -> None:
    raffle, _ = await _setup(client, ctx, total_tickets=5, max_per_account=5)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")
    _, other = await verified_buyer(client, ctx, "other@example.com")
    await buy(client, raffle["id"], other, 3)

    refused = await buy(client, raffle["id"], buyer, 3, key="k")
    smaller = await buy(client, raffle["id"], buyer, 2)
    replayed = await buy(client, raffle["id"], buyer, 3, key="k")

    assert refused.status_code == 409
    assert refused.json()["code"] == "tickets_unavailable"
    assert refused.headers["content-type"] == "application/problem+json"
    assert smaller.status_code == 201
    # Not evaluated again: the stored answer.
    assert replayed.json() == refused.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"


async def test_buying_needs_a_key_and_a_verified_email(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    raffle, _ = await _setup(client, ctx)
    unverified = await signed_in(client, "new@example.com")
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")

    no_key = await client.post(
        f"{PUBLIC}/{raffle['id']}/purchases", json={"quantity": 1}, headers=buyer
    )
    bad_key = await buy(client, raffle["id"], buyer, 1, key="has space")
    not_verified = await buy(client, raffle["id"], unverified, 1)

    assert no_key.status_code == 400
    assert no_key.json()["code"] == "idempotency_key_required"
    assert bad_key.status_code == 400
    assert not_verified.status_code == 403
    assert not_verified.json()["code"] == "email_not_verified"


async def test_availability_and_the_per_account_maximum_are_enforced(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    raffle, _ = await _setup(client, ctx, total_tickets=5, max_per_account=3)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    _, bob = await verified_buyer(client, ctx, "bob@example.com")

    too_many = await buy(client, raffle["id"], ada, 4)
    three = await buy(client, raffle["id"], ada, 3)
    fourth = await buy(client, raffle["id"], ada, 1)
    bob_three = await buy(client, raffle["id"], bob, 3)
    bob_two = await buy(client, raffle["id"], bob, 2)

    assert too_many.json()["code"] == "account_limit_reached"
    assert three.status_code == 201
    assert fourth.json()["code"] == "account_limit_reached"
    assert bob_three.json()["code"] == "tickets_unavailable"
    assert bob_two.status_code == 201
    assert await _remaining(client, raffle["id"]) == 0


async def test_payments_issue_tickets_numbered_in_issue_order(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, admin = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    _, bob = await verified_buyer(client, ctx, "bob@example.com")
    ada_purchase = (await buy(client, raffle["id"], ada, 2)).json()
    bob_purchase = (await buy(client, raffle["id"], bob, 3)).json()

    stripe_api.succeed(bob_purchase["payment_intent_id"])
    stripe_api.succeed(ada_purchase["payment_intent_id"])
    delivered = await stripe_api.deliver(client)
    ada_tickets = (await client.get("/api/v1/users/me/tickets", headers=ada)).json()["items"]
    bob_purchases = (await client.get("/api/v1/users/me/purchases", headers=bob)).json()["items"]
    sales = (await client.get(f"{ADMIN}/{raffle['id']}", headers=admin)).json()["sales"]
    ledger = (await client.get(f"{PUBLIC}/{raffle['id']}/ledger")).json()["items"]

    assert [r.json()["outcome"] for r in delivered] == ["issued", "issued"]
    assert sorted(t["number"] for t in ada_tickets) == [4, 5]
    assert bob_purchases[0]["status"] == "paid"
    assert bob_purchases[0]["ticket_numbers"] == [1, 2, 3]
    assert sales == {"tickets_sold": 5, "tickets_reserved": 0, "gross": 2500, "refunded": 0}
    assert [e["number"] for e in ledger] == [1, 2, 3, 4, 5]


async def test_each_event_is_processed_once_and_signatures_are_checked(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    purchase = (await buy(client, raffle["id"], ada, 2)).json()
    stripe_api.succeed(purchase["payment_intent_id"])
    events = stripe_api.take_events()
    payload = events[0][1]

    first = await stripe_api.deliver(client, events)
    again = await stripe_api.deliver(client, events)
    forged = await client.post(
        "/api/v1/payments/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": FakeStripe.sign(payload, secret="whsec_wrong")},
    )
    stale = await client.post(
        "/api/v1/payments/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": FakeStripe.sign(payload, at=int(time.time()) - 600)},
    )
    tickets = (await client.get("/api/v1/users/me/tickets", headers=ada)).json()["items"]

    assert first[0].json()["outcome"] == "issued"
    assert again[0].json()["outcome"] == "duplicate"
    assert forged.status_code == stale.status_code == 400
    assert forged.json()["code"] == "invalid_webhook"
    assert len(tickets) == 2


async def test_events_in_any_order_settle_the_same(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    purchase = (await buy(client, raffle["id"], ada, 1)).json()
    stripe_api.fail(purchase["payment_intent_id"])
    stripe_api.succeed(purchase["payment_intent_id"])
    failed, succeeded = stripe_api.take_events()

    # Success first, then the older failure: the failure changes nothing.
    outcomes = [r.json()["outcome"] for r in await stripe_api.deliver(client, [succeeded, failed])]
    mine = (await client.get("/api/v1/users/me/purchases", headers=ada)).json()["items"]

    assert outcomes == ["issued", "ignored"]
    assert mine[0]["status"] == "paid"


async def test_the_worker_releases_expired_reservations_and_cancels_their_intents(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    purchase = (await buy(client, raffle["id"], ada, 4)).json()

    clock.advance(minutes=14)
    await run_jobs(app)
    held = await _remaining(client, raffle["id"])
    clock.advance(minutes=2)
    await run_jobs(app)
    released = await _remaining(client, raffle["id"])

    assert (held, released) == (96, 100)
    assert stripe_api.intents[purchase["payment_intent_id"]]["status"] == "canceled"


async def test_a_late_payment_gets_tickets_while_they_are_available(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    purchase = (await buy(client, raffle["id"], ada, 2)).json()
    clock.advance(minutes=16)
    await run_jobs(app)
    stripe_api.take_events()  # the cancellation's event
    stripe_api.intents[purchase["payment_intent_id"]]["status"] = "requires_confirmation"

    stripe_api.succeed(purchase["payment_intent_id"])
    outcome = (await stripe_api.deliver(client))[0].json()["outcome"]

    assert outcome == "issued"
    assert await _remaining(client, raffle["id"]) == 98


async def test_a_late_payment_for_sold_out_tickets_is_refunded(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock, stripe_api: FakeStripe
) -> None:
    raffle, admin = await _setup(client, ctx, total_tickets=2, max_per_account=2)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    late = (await buy(client, raffle["id"], ada, 2)).json()
    clock.advance(minutes=16)
    await run_jobs(app)
    _, bob = await verified_buyer(client, ctx, "bob@example.com")
    ada = {"Authorization": f"Bearer {(await login(client, 'ada@example.com'))['access_token']}"}
    bob_purchase = (await buy(client, raffle["id"], bob, 2)).json()
    stripe_api.succeed(bob_purchase["payment_intent_id"])
    stripe_api.succeed(late["payment_intent_id"])

    outcomes = [r.json()["outcome"] for r in await stripe_api.deliver(client)]
    await run_jobs(app)  # the refund
    refund_events = [r.json()["outcome"] for r in await stripe_api.deliver(client)]
    ada_purchases = (await client.get("/api/v1/users/me/purchases", headers=ada)).json()["items"]
    _, admin = await signed_in_as(client, ctx, "root2@example.com", "superadmin")
    sales = (await client.get(f"{ADMIN}/{raffle['id']}", headers=admin)).json()["sales"]

    # The expired intent's cancellation finds the reservation released already.
    assert outcomes == ["ignored", "issued", "refund"]
    assert [r["payment_intent"] for r in stripe_api.refunds.values()] == [late["payment_intent_id"]]
    assert "recorded" in refund_events
    assert ada_purchases[0]["status"] == "refunded"
    assert ada_purchases[0]["ticket_numbers"] == []
    assert sales["tickets_sold"] == 2
    assert sales["refunded"] == 1000


async def test_a_declined_card_answers_402_and_gives_the_tickets_back(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    stripe_api.decline = True

    declined = await buy(client, raffle["id"], ada, 2, key="k1")
    replayed = await buy(client, raffle["id"], ada, 2, key="k1")

    assert declined.status_code == 402
    assert declined.json()["code"] == "payment_failed"
    assert replayed.json() == declined.json()
    assert await _remaining(client, raffle["id"]) == 100


async def test_stripe_unreachable_is_503_and_the_same_key_may_retry(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    raffle, _ = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    stripe_api.down = True

    down = await buy(client, raffle["id"], ada, 2, key="k1")
    stripe_api.down = False
    retried = await buy(client, raffle["id"], ada, 2, key="k1")

    assert down.status_code == 503
    assert down.json()["code"] == "payments_unavailable"
    assert retried.status_code == 201
    assert await _remaining(client, raffle["id"]) == 98


async def test_cancelling_a_raffle_refunds_every_paid_purchase(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, stripe_api: FakeStripe
) -> None:
    raffle, admin = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    _, bob = await verified_buyer(client, ctx, "bob@example.com")
    paid = [(await buy(client, raffle["id"], who, 2)).json() for who in (ada, bob)]
    pending = (await buy(client, raffle["id"], ada, 1)).json()
    for purchase in paid:
        stripe_api.succeed(purchase["payment_intent_id"])
    await stripe_api.deliver(client)

    cancelled = await client.post(f"{ADMIN}/{raffle['id']}/cancel", headers=admin)
    await run_jobs(app)
    await stripe_api.deliver(client)
    statuses = [
        p["status"]
        for p in (await client.get("/api/v1/users/me/purchases", headers=ada)).json()["items"]
    ]

    assert cancelled.status_code == 200
    assert sorted(r["payment_intent"] for r in stripe_api.refunds.values()) == sorted(
        p["payment_intent_id"] for p in paid
    )
    assert stripe_api.intents[pending["payment_intent_id"]]["status"] == "canceled"
    assert sorted(statuses) == ["refunded", "released"]


async def test_a_refund_by_hand_needs_the_permission(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, stripe_api: FakeStripe
) -> None:
    raffle, admin = await _setup(client, ctx)
    _, ada = await verified_buyer(client, ctx, "ada@example.com")
    purchase = (await buy(client, raffle["id"], ada, 1)).json()
    stripe_api.succeed(purchase["payment_intent_id"])
    await stripe_api.deliver(client)
    path = f"{ADMIN}/purchases/{purchase['id']}/refund"

    refused = await client.post(path, headers=ada)
    refunded = await client.post(path, headers=admin)
    twice = await client.post(path, headers=admin)
    await run_jobs(app)

    assert refused.status_code == 403
    assert refunded.json()["status"] == "refund_pending"
    assert twice.status_code == 409
    assert (
        next(iter(stripe_api.refunds.values()))["payment_intent"] == purchase["payment_intent_id"]
    )


def test_fake_events_are_json(stripe_api: FakeStripe) -> None:
    stripe_api._event("payment_intent.succeeded", {"id": "pi_x"})
    ((_, payload),) = stripe_api.take_events()

    assert json.loads(payload)["data"]["object"]["id"] == "pi_x"
