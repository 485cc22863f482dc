"""Raffles: the admin API (``raffles:manage``), the states, and the public list and detail."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from atrium.apps.raffles.beacon import DrandBeacon
from atrium.apps.raffles.drawlog import GENESIS, entry_hash
from atrium.apps.raffles.settings import QUICKNET_CHAIN_HASH, QUICKNET_GENESIS
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.apps.raffles.conftest import create_raffle, raffle_body
from tests.factories import signed_in, signed_in_as

ADMIN = "/api/v1/admin/raffles"
PUBLIC = "/api/v1/raffles"


async def _admin(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _, headers = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    return headers


async def test_creating_a_raffle_needs_raffles_manage(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    plain = await signed_in(client, "plain@example.com")

    refused = await client.post(ADMIN, json=raffle_body(ctx), headers=plain)
    anonymous = await client.post(ADMIN, json=raffle_body(ctx))

    assert refused.status_code == 403
    assert "raffles:manage" in refused.json()["detail"]
    assert anonymous.status_code == 401


async def test_a_draft_is_not_public_until_published(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _admin(client, ctx)
    draft = await create_raffle(client, ctx, admin, publish=False)

    hidden = await client.get(f"{PUBLIC}/{draft['id']}")
    listed = await client.get(PUBLIC)
    published = await client.post(f"{ADMIN}/{draft['id']}/publish", headers=admin)
    shown = await client.get(f"{PUBLIC}/{draft['id']}")

    assert draft["status"] == "draft"
    assert draft["commitment"] is None
    assert draft["currency"] == "EUR"
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "raffle_not_found"
    assert listed.json()["items"] == []
    assert published.json()["status"] == "open"
    assert shown.status_code == 200
    assert shown.json()["tickets_remaining"] == 100


async def test_publishing_commits_to_a_secret_seed_and_the_beacon_round_after_the_close(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    admin = await _admin(client, ctx)
    opens = clock.now() + timedelta(hours=1)
    closes = clock.now() + timedelta(hours=5)
    raffle = await create_raffle(
        client, ctx, admin, opens_at=opens.isoformat(), closes_at=closes.isoformat()
    )
    draw = (await client.get(f"{PUBLIC}/{raffle['id']}/draw")).json()
    log = (await client.get(f"{PUBLIC}/draw-log")).json()["items"]
    beacon = DrandBeacon("https://api.drand.sh", QUICKNET_CHAIN_HASH, QUICKNET_GENESIS, 3, 1)

    assert raffle["status"] == "scheduled"
    assert len(raffle["commitment"]) == 64
    assert raffle["beacon"] == f"drand:{QUICKNET_CHAIN_HASH}"
    assert raffle["beacon_round"] == beacon.round_after(closes)
    assert beacon.round_time(raffle["beacon_round"]) > closes
    assert beacon.round_time(raffle["beacon_round"] - 1) <= closes
    assert draw["seed"] is None
    assert draw["commitment"] == raffle["commitment"]
    assert [(e["kind"], e["prev_hash"]) for e in log] == [("commitment", GENESIS)]
    assert log[0]["data"]["commitment"] == raffle["commitment"]


async def test_cancelling_publishes_the_seed_that_matches_the_commitment(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _admin(client, ctx)
    raffle = await create_raffle(client, ctx, admin)

    cancelled = await client.post(f"{ADMIN}/{raffle['id']}/cancel", headers=admin)
    again = await client.post(f"{ADMIN}/{raffle['id']}/cancel", headers=admin)
    draw = (await client.get(f"{PUBLIC}/{raffle['id']}/draw")).json()
    log = (await client.get(f"{PUBLIC}/draw-log")).json()["items"]

    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert hashlib.sha256(bytes.fromhex(draw["seed"])).hexdigest() == raffle["commitment"]
    assert [e["kind"] for e in log] == ["commitment", "cancellation"]
    assert log[1]["data"]["seed"] == draw["seed"]
    for previous, entry in zip([None, *log], log, strict=False):
        assert entry["prev_hash"] == (previous["hash"] if previous else GENESIS)
        assert entry["hash"] == entry_hash(
            entry["seq"],
            entry["raffle_id"],
            entry["kind"],
            entry["at"],
            entry["data"],
            entry["prev_hash"],
        )


async def test_terms_buyers_rely_on_are_fixed_once_the_raffle_opens(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _admin(client, ctx)
    draft = await create_raffle(client, ctx, admin, publish=False)
    raffle = await create_raffle(client, ctx, admin)

    draft_price = await client.patch(
        f"{ADMIN}/{draft['id']}", json={"ticket_price": 900}, headers=admin
    )
    open_price = await client.patch(
        f"{ADMIN}/{raffle['id']}", json={"ticket_price": 900}, headers=admin
    )
    open_title = await client.patch(f"{ADMIN}/{raffle['id']}", json={"title": "New"}, headers=admin)
    await client.post(f"{ADMIN}/{raffle['id']}/cancel", headers=admin)
    cancelled_title = await client.patch(
        f"{ADMIN}/{raffle['id']}", json={"title": "x"}, headers=admin
    )

    assert draft_price.json()["ticket_price"] == 900
    assert open_price.status_code == 409
    assert open_price.json()["code"] == "raffle_not_editable"
    assert open_title.json()["title"] == "New"
    assert cancelled_title.status_code == 409


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        (
            {"opens_at": "2030-01-02T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z"},
            "invalid_schedule",
        ),
        ({"max_per_account": 101}, "invalid_schedule"),
        ({"image_file_ids": [str(uuid.uuid4())]}, "invalid_image"),
        ({"currency": "E1R"}, "validation_error"),
        ({"ticket_price": 0}, "validation_error"),
    ],
)
async def test_a_raffle_that_cannot_be_run_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, overrides: dict[str, Any], code: str
) -> None:
    admin = await _admin(client, ctx)

    response = await client.post(ADMIN, json=raffle_body(ctx, **overrides), headers=admin)

    assert response.status_code == 422
    assert response.json()["code"] == code


async def test_publishing_a_raffle_that_closed_already_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    admin = await _admin(client, ctx)
    closes = clock.now() + timedelta(minutes=5)
    draft = await create_raffle(client, ctx, admin, publish=False, closes_at=closes.isoformat())
    clock.advance(minutes=6)

    response = await client.post(f"{ADMIN}/{draft['id']}/publish", headers=admin)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_schedule"


async def _published(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], n: int
) -> list[dict[str, Any]]:
    now = ctx.clock.now()
    out = []
    for i in range(n):
        out.append(
            await create_raffle(
                client,
                ctx,
                admin,
                title=f"Raffle {i}",
                ticket_price=100 * (i % 4 + 1),
                closes_at=(now + timedelta(hours=6 * (i + 1))).isoformat(),
            )
        )
    return out


async def test_the_public_list_pages_in_a_stable_order_for_every_sort(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _admin(client, ctx)
    raffles = await _published(client, ctx, admin, 7)
    await create_raffle(client, ctx, admin, publish=False)
    expected = {
        "closes_at": [r["id"] for r in raffles],
        "-created_at": [r["id"] for r in raffles][::-1],
        "price": [r["id"] for r in sorted(raffles, key=lambda r: (r["ticket_price"], r["id"]))],
        "-price": [
            r["id"]
            for r in sorted(raffles, key=lambda r: (r["ticket_price"], r["id"]), reverse=True)
        ],
    }

    for sort, ids in expected.items():
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(PUBLIC, params=params)).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if sort == "-created_at":
            # Created within the same frozen instant: ties are ordered by id.
            ids = [r["id"] for r in sorted(raffles, key=lambda r: r["id"], reverse=True)]
        assert seen == ids, sort


async def test_the_public_list_filters_by_status_closing_time_and_price(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _admin(client, ctx)
    raffles = await _published(client, ctx, admin, 6)
    await client.post(f"{ADMIN}/{raffles[0]['id']}/cancel", headers=admin)

    def ids(response: httpx.Response) -> set[str]:
        return {r["id"] for r in response.json()["items"]}

    cancelled = await client.get(PUBLIC, params={"status": "cancelled"})
    drafts = await client.get(PUBLIC, params={"status": "draft"})
    soon = await client.get(PUBLIC, params={"closing_soon": "true"})
    cheap = await client.get(PUBLIC, params={"price_min": 200, "price_max": 300})

    assert ids(cancelled) == {raffles[0]["id"]}
    assert ids(drafts) == set()
    # Closing within 24 hours: 12, 18 and 24 hours away (the first is cancelled).
    assert ids(soon) == {r["id"] for r in raffles[1:4]}
    assert ids(cheap) == {r["id"] for r in raffles if 200 <= r["ticket_price"] <= 300}


@pytest.mark.parametrize("cursor", ["nonsense", "eyJrIjoicmFmZmxlczpwcmljZSIsInYiOjEsImlkIjoiYSJ9"])
async def test_a_bad_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(PUBLIC, params={"cursor": cursor})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


async def test_a_cursor_of_another_sort_is_400(client: httpx.AsyncClient, ctx: AppContext) -> None:
    admin = await _admin(client, ctx)
    await _published(client, ctx, admin, 3)
    page = (await client.get(PUBLIC, params={"sort": "price", "limit": 1})).json()

    response = await client.get(PUBLIC, params={"sort": "closes_at", "cursor": page["next_cursor"]})

    assert response.status_code == 400


async def test_the_admin_list_shows_drafts_and_sales_figures(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _admin(client, ctx)
    draft = await create_raffle(client, ctx, admin, publish=False)
    raffle = await create_raffle(client, ctx, admin)

    listed = (await client.get(ADMIN, headers=admin)).json()["items"]
    drafts = (await client.get(ADMIN, headers=admin, params={"status": "draft"})).json()["items"]
    one = (await client.get(f"{ADMIN}/{raffle['id']}", headers=admin)).json()

    assert {r["id"] for r in listed} == {draft["id"], raffle["id"]}
    assert [r["id"] for r in drafts] == [draft["id"]]
    assert one["sales"] == {"tickets_sold": 0, "tickets_reserved": 0, "gross": 0, "refunded": 0}


async def test_changing_the_close_of_a_scheduled_raffle_logs_the_new_round(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    admin = await _admin(client, ctx)
    raffle = await create_raffle(
        client,
        ctx,
        admin,
        opens_at=(clock.now() + timedelta(hours=1)).isoformat(),
        closes_at=(clock.now() + timedelta(hours=2)).isoformat(),
    )
    later = clock.now() + timedelta(hours=3)

    changed = (
        await client.patch(
            f"{ADMIN}/{raffle['id']}", json={"closes_at": later.isoformat()}, headers=admin
        )
    ).json()
    log = (await client.get(f"{PUBLIC}/draw-log")).json()["items"]

    assert changed["beacon_round"] == raffle["beacon_round"] + 1200
    assert changed["commitment"] == raffle["commitment"]
    assert [e["data"]["beacon_round"] for e in log] == [
        raffle["beacon_round"],
        changed["beacon_round"],
    ]
    assert datetime.fromisoformat(changed["closes_at"]) == later
