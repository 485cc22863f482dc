"""The raffles pages of the admin console (``/admin/raffles``: list with sales, create,
edit, publish, close, cancel, draw, purchases and refunds) and the buyer's tickets in the
account pages (``/account/tickets``): the same services, permissions and rules as the API,
through forms with CSRF tokens. The browser test (Chromium, axe) is
tests/e2e/test_raffles_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.apps.raffles.conftest import buy, create_raffle, issue_tickets, verified_buyer
from tests.apps.raffles.fake_stripe import FakeStripe
from tests.apps.raffles.fakes import FakeDrand
from tests.factories import grant_role, register, signed_in_as
from tests.ui.conftest import csrf_of, post_form, sign_in

PUBLIC = "/api/v1/raffles"


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 52000))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://atrium.test", headers={"User-Agent": "pytest"}
    ) as c:
        yield c


async def _manager(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, *roles: str
) -> str:
    user = await register(client, "manager@example.com")
    for role in roles or ("superadmin",):
        await grant_role(ctx, user["id"], role)
    await sign_in(browser, "manager@example.com")
    return str(user["id"])


def _form(ctx: AppContext, **overrides: str) -> dict[str, str]:
    now = ctx.clock.now()
    form = {
        "title": "Console watch",
        "description": "A watch.",
        "prize_description": "One watch.",
        "terms": "Adults only.",
        "currency": "eur",
        "ticket_price": "250",
        "total_tickets": "40",
        "max_per_account": "5",
        "prizes": "2",
        # datetime-local values, UTC as the form says
        "opens_at": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "closes_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    }
    form.update(overrides)
    return form


async def _create(browser: httpx.AsyncClient, ctx: AppContext, **overrides: str) -> str:
    created = await post_form(
        browser, "/admin/raffles/new", "/admin/raffles", _form(ctx, **overrides)
    )
    assert created.status_code == 303, created.text
    match = re.fullmatch(
        r"/admin/raffles/([0-9a-f-]{36})\?done=created", created.headers["location"]
    )
    assert match, created.headers["location"]
    return match.group(1)


async def _post(browser: httpx.AsyncClient, raffle_id: str, action: str) -> httpx.Response:
    page = f"/admin/raffles/{raffle_id}"
    return await post_form(browser, page, f"{page}/{action}" if action else page, {})


async def test_the_raffles_pages_need_raffles_manage(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")

    listing = await browser.get("/admin/raffles")
    account = await browser.get("/account")

    assert listing.status_code == 403
    assert "You do not have permission to do this." in listing.text
    assert 'href="/admin/raffles"' not in account.text
    assert 'href="/account/tickets"' in account.text  # the application's account link


async def test_create_publish_and_list_with_sales(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _manager(browser, client, ctx)
    raffle_id = await _create(browser, ctx)
    draft = (await client.get(f"{PUBLIC}/{raffle_id}")).status_code

    published = await _post(browser, raffle_id, "publish")
    public = (await client.get(f"{PUBLIC}/{raffle_id}")).json()
    await issue_tickets(ctx, raffle_id, await _buyer_id(client), 3)
    listing = await browser.get("/admin/raffles")
    detail = await browser.get(f"/admin/raffles/{raffle_id}")

    assert draft == 404  # drafts are not public
    assert published.headers["location"] == f"/admin/raffles/{raffle_id}?done=published"
    assert public["status"] == "open"
    assert public["ticket_price"] == 250
    assert public["currency"] == "EUR"
    assert public["prizes"] == 2
    assert 'aria-current="page">Raffles</a>' in listing.text
    row = re.search(r"Console watch</a></th>(.*?)</tr>", listing.text, re.S)
    assert row, listing.text
    assert "<td>open</td>" in row.group(1)
    assert "<td>3 / 40</td>" in row.group(1)
    assert "<td>750 EUR</td>" in row.group(1)  # gross
    assert public["commitment"] in detail.text
    assert str(public["beacon_round"]) in detail.text


async def _buyer_id(client: httpx.AsyncClient) -> str:
    return str((await register(client, "holder@example.com"))["id"])


async def test_a_bad_form_is_shown_again_with_the_services_message(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _manager(browser, client, ctx)
    now = ctx.clock.now()
    inverted = _form(
        ctx,
        opens_at=(now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        title="Backwards",
    )

    response = await post_form(browser, "/admin/raffles/new", "/admin/raffles", inverted)
    bad_currency = await post_form(
        browser, "/admin/raffles/new", "/admin/raffles", _form(ctx, currency="E1")
    )

    assert response.status_code == 422
    assert "opens_at must come before closes_at." in response.text
    assert 'value="Backwards"' in response.text  # the form keeps what was typed
    assert bad_currency.status_code == 422
    assert 'role="alert"' in bad_currency.text


async def test_an_open_raffle_changes_its_description_but_not_its_terms(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _manager(browser, client, ctx)
    raffle_id = await _create(browser, ctx)
    await _post(browser, raffle_id, "publish")
    page = f"/admin/raffles/{raffle_id}"
    detail = await browser.get(page)
    # Disabled inputs are not posted: the terms buyers rely on stay as they are.
    edit = {
        k: v for k, v in _form(ctx).items() if k in ("title", "description", "prize_description")
    }

    saved = await browser.post(
        page, data={**edit, "description": "Now boxed.", "csrf_token": csrf_of(detail.text)}
    )
    forced = await browser.post(
        page,
        data={
            **edit,
            "description": "Now boxed.",
            "ticket_price": "1",
            "csrf_token": csrf_of(detail.text),
        },
    )
    public = (await client.get(f"{PUBLIC}/{raffle_id}")).json()

    assert re.search(r'id="ticket_price"[^>]* disabled', detail.text)
    assert saved.status_code == 303
    assert public["description"] == "Now boxed."
    assert forced.status_code == 409
    assert "A open raffle cannot change ticket_price." in forced.text
    assert public["ticket_price"] == 250


async def test_close_now_then_draw_when_the_round_is_out(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    drand: FakeDrand,
) -> None:
    await _manager(browser, client, ctx)
    raffle_id = await _create(browser, ctx)
    await _post(browser, raffle_id, "publish")
    await issue_tickets(ctx, raffle_id, await _buyer_id(client), 5)

    closed = await _post(browser, raffle_id, "close")
    after_close = (await client.get(f"{PUBLIC}/{raffle_id}/draw")).json()
    too_early = await _post(browser, raffle_id, "draw")  # the round after closes_at
    clock.advance(days=1, seconds=10)
    drand.latest = after_close["beacon_round"]
    drawn = await _post(browser, raffle_id, "draw")
    record = (await client.get(f"{PUBLIC}/{raffle_id}/draw")).json()
    detail = await browser.get(f"/admin/raffles/{raffle_id}")

    assert closed.headers["location"].endswith("?done=closed")
    assert after_close["status"] == "closed"
    assert after_close["ticket_count"] == 5
    assert too_early.status_code == 503
    assert "The beacon round is not out yet." in too_early.text
    assert drawn.headers["location"].endswith("?done=drawn")
    assert record["status"] == "drawn"
    assert len(record["winners"]) == 2
    winners = ", ".join(str(w["number"]) for w in record["winners"])
    assert f'<dd id="winners">{winners}</dd>' in detail.text
    assert record["seed"] in detail.text
    assert record["ledger_hash"] in detail.text


async def test_a_closed_raffle_is_not_closed_again(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _manager(browser, client, ctx)
    raffle_id = await _create(browser, ctx)
    draft_close = await _post(browser, raffle_id, "close")
    _, admin = await signed_in_as(client, ctx, "api@example.com", "superadmin")
    api_close = await client.post(f"/api/v1/admin/raffles/{raffle_id}/close", headers=admin)

    assert draft_close.status_code == 409
    assert "Only an open raffle is closed; this one is draft." in draft_close.text
    assert api_close.status_code == 409
    assert api_close.json()["code"] == "invalid_transition"


async def test_purchases_are_listed_and_refunded_from_the_raffle_page(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    stripe_api: FakeStripe,
) -> None:
    _, admin = await signed_in_as(client, ctx, "api@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")
    bought = (await buy(client, raffle["id"], buyer, 2)).json()
    stripe_api.succeed(bought["payment_intent_id"])
    await stripe_api.deliver(client)
    await _manager(browser, client, ctx)
    page = f"/admin/raffles/{raffle['id']}"

    detail = await browser.get(page)
    refund_action = f"{page}/purchases/{bought['id']}/refund"
    refunded = await post_form(browser, page, refund_action, {})
    again = await post_form(browser, page, refund_action, {})
    api = await client.get(f"/api/v1/admin/raffles/{raffle['id']}/purchases", headers=admin)

    assert "buyer@example.com" in detail.text
    assert f'action="{refund_action}"' in detail.text
    assert refunded.headers["location"] == f"{page}?done=refunding"
    assert again.status_code == 409  # already being refunded
    (item,) = api.json()["items"]
    assert item["email"] == "buyer@example.com"
    assert item["status"] == "refund_pending"
    assert item["ticket_numbers"] == [1, 2]


async def test_refunds_need_their_own_permission(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    stripe_api: FakeStripe,
) -> None:
    _, admin = await signed_in_as(client, ctx, "api@example.com", "superadmin")
    created = await client.post(
        "/api/v1/admin/roles",
        json={"name": "raffle_manager", "permissions": ["raffles:manage"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    raffle = await create_raffle(client, ctx, admin)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")
    bought = (await buy(client, raffle["id"], buyer, 1)).json()
    stripe_api.succeed(bought["payment_intent_id"])
    await stripe_api.deliver(client)
    await _manager(browser, client, ctx, "raffle_manager")
    page = f"/admin/raffles/{raffle['id']}"

    detail = await browser.get(page)
    refused = await post_form(browser, page, f"{page}/purchases/{bought['id']}/refund", {})

    assert detail.status_code == 200
    assert "/refund" not in detail.text
    assert f'action="{page}/draw"' not in detail.text  # raffles:draw is not held either
    assert refused.status_code == 403


async def test_the_buyer_sees_purchases_and_ticket_numbers(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    stripe_api: FakeStripe,
    clock: FrozenClock,
) -> None:
    _, admin = await signed_in_as(client, ctx, "api@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin, title="Bike of the month")
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")
    paid = (await buy(client, raffle["id"], buyer, 3)).json()
    stripe_api.succeed(paid["payment_intent_id"])
    await stripe_api.deliver(client)
    clock.advance(seconds=5)
    await buy(client, raffle["id"], buyer, 1)  # reserved, not paid yet
    await sign_in(browser, "buyer@example.com")

    page = await browser.get("/account/tickets")

    assert page.status_code == 200
    assert 'aria-current="page">My tickets</a>' in page.text
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", page.text, re.S)
    assert len(rows) == 2
    assert "Bike of the month" in rows[1]
    assert "<td>1, 2, 3</td>" in rows[1]
    assert "<td>paid</td>" in rows[1]
    assert "<td>reserved</td>" in rows[0]


async def test_the_pages_speak_spanish(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _manager(browser, client, ctx)
    browser.headers["Accept-Language"] = "es"

    listing = await browser.get("/admin/raffles")
    tickets = await browser.get("/account/tickets")

    assert ">Sorteos</a>" in listing.text
    assert "Nuevo sorteo" in listing.text
    assert ">Mis boletos</a>" in tickets.text
