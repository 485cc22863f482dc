"""Browser test of the raffles pages: Playwright drives Debian's Chromium against
``atrium serve`` with ``ATRIUM_APPS='["raffles"]'`` (Stripe and the drand beacon are the
test suite's fakes on loopback). An administrator creates, edits and publishes a raffle in
the console, sees a purchase paid through Stripe's webhook, refunds it and closes the
raffle; the buyer sees the tickets on the account pages. Every page is checked with
axe-core (no serious or critical violation) and, with ``ATRIUM_UI_SCREENSHOTS=<folder>``,
photographed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.raffles.fake_stripe import API_KEY, WEBHOOK_PATH, WEBHOOK_SECRET, FakeStripe
from tests.apps.raffles.fake_stripe import fake_stripe as run_fake_stripe
from tests.apps.raffles.fakes import fake_drand
from tests.e2e.browser import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    AtriumServer,
    check_accessibility,
)

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api")

SHOTS = (
    Path(os.environ["ATRIUM_UI_SCREENSHOTS"]) if os.environ.get("ATRIUM_UI_SCREENSHOTS") else None
)


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with run_fake_stripe() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stripe: FakeStripe) -> Iterator[AtriumServer]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert AXE.exists(), f"{AXE} is missing: npm ci"
    with fake_drand() as drand:
        running = AtriumServer(
            tmp_path_factory.mktemp("raffles-browser"),
            env={
                "ATRIUM_APPS": '["raffles"]',
                "ATRIUM_RAFFLES__STRIPE_SECRET_KEY": API_KEY,
                "ATRIUM_RAFFLES__STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "ATRIUM_RAFFLES__STRIPE_API_BASE": stripe.url,
                "ATRIUM_RAFFLES__BEACON_URL": drand.url,
            },
        )
        yield running
        running.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, server: AtriumServer) -> Iterator[Any]:
    context = chromium.new_context(base_url=server.base, user_agent="Chromium e2e")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm questions
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield page
    context.close()
    assert not csp_errors, csp_errors


def _check(page: Any, name: str) -> None:
    check_accessibility(page, name, SHOTS)


def _utc_local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _buy_and_pay(server: AtriumServer, stripe: FakeStripe, raffle_id: str, quantity: int) -> None:
    """The administrator (a verified account) buys tickets through the API; Stripe's fake
    marks the payment succeeded and sends its signed webhook to the server."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
        token = client.post(
            "/api/v1/auth/login", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ).json()["access_token"]
        bought = client.post(
            f"/api/v1/raffles/{raffle_id}/purchases",
            json={"quantity": quantity},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        assert bought.status_code == 201, bought.text
        stripe.succeed(bought.json()["payment_intent_id"])
        for _, payload in stripe.take_events():
            delivered = client.post(
                WEBHOOK_PATH,
                content=payload,
                headers={
                    "Stripe-Signature": stripe.sign(payload),
                    "Content-Type": "application/json",
                },
            )
            assert delivered.status_code == 200, delivered.text


def test_an_administrator_runs_a_raffle_from_the_console(
    page: Any, server: AtriumServer, stripe: FakeStripe
) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.locator("main form[action='/login'] button[type=submit]").click()
    page.wait_for_url("**/account*")

    page.goto("/admin")
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Raffles"
    ).click()
    page.wait_for_url("**/admin/raffles")
    _check(page, "admin-raffles-empty")

    page.get_by_role("button", name="New raffle").click()  # a link styled as a button
    now = datetime.now(UTC)
    page.get_by_label("Title", exact=True).fill("Watch of the week")
    page.get_by_label("Prize", exact=True).fill("One Swiss watch.")
    page.get_by_label("Ticket price").fill("500")
    page.get_by_label("Total tickets").fill("100")
    page.get_by_label("Maximum tickets per account").fill("10")
    page.get_by_label("Opens (UTC)").fill(_utc_local(now - timedelta(minutes=5)))
    page.get_by_label("Closes (UTC)").fill(_utc_local(now + timedelta(days=1)))
    _check(page, "admin-raffle-new")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_role("status").filter(has_text="Draft created.").wait_for()
    raffle_id = page.url.split("/admin/raffles/")[1].split("?")[0]
    assert page.locator("#raffle-status").inner_text() == "draft"
    _check(page, "admin-raffle-draft")

    page.get_by_label("Description").fill("Boxed, with its papers.")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("status").filter(has_text="commitment is public").wait_for()
    assert page.locator("#raffle-status").inner_text() == "open"
    commitment = page.locator("#draw-record dd code").first.inner_text()
    assert len(commitment) == 64
    # An open raffle's terms are locked on its form.
    assert page.get_by_label("Ticket price").is_disabled()
    _check(page, "admin-raffle-open")

    _buy_and_pay(server, stripe, raffle_id, 3)
    page.reload()
    row = page.locator("#purchases tbody tr").first
    assert "1, 2, 3" in row.inner_text()
    assert "paid" in row.inner_text()
    assert "3 / 100" in page.locator("#sales").inner_text()
    _check(page, "admin-raffle-purchases")
    row.get_by_role("button", name="Refund").click()
    page.get_by_role("status").filter(has_text="refund was requested").wait_for()
    assert "refund_pending" in page.locator("#purchases tbody tr").first.inner_text()

    page.get_by_role("button", name="Close now").click()
    page.get_by_role("status").filter(has_text="ledger is frozen").wait_for()
    assert page.locator("#raffle-status").inner_text() == "closed"
    ledger_hash = page.locator("#ledger-hash").inner_text()
    assert len(ledger_hash) == 64  # the frozen ledger's SHA-256, published
    _check(page, "admin-raffle-closed")

    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Raffles"
    ).click()
    listing = page.locator("#raffles tbody tr").first.inner_text()
    assert "Watch of the week" in listing
    assert "closed" in listing
    _check(page, "admin-raffles")

    page.goto("/account")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="My tickets").click()
    page.wait_for_url("**/account/tickets")
    mine = page.locator("#my-purchases tbody tr").first.inner_text()
    assert "Watch of the week" in mine
    assert "1, 2, 3" in mine
    _check(page, "account-tickets")
