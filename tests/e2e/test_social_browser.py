"""Social login in a real browser: Chromium signs in on the hosted login page through a
real OpenID provider (npm ``oidc-provider``), its login and consent forms included, with
``atrium serve`` as a separate process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.e2e.browser import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    AtriumServer,
    check_accessibility,
    free_port,
)
from tests.e2e.test_browser import _register, _sign_in
from tests.social.real_idp import CLIENT_ID, CLIENT_SECRET, oidc_provider

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtriumServer]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert AXE.exists(), f"{AXE} is missing: npm ci"
    port = free_port()
    callback = f"http://127.0.0.1:{port}/api/v1/auth/oauth/idp/callback"
    with oidc_provider([callback]) as issuer:
        providers = [
            {
                "id": "idp",
                "display_name": "Test IdP",
                "issuer": issuer,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "trust_email_verified": True,
            }
        ]
        running = AtriumServer(
            tmp_path_factory.mktemp("social-browser"),
            port=port,
            env={"ATRIUM_SOCIAL__PROVIDERS": json.dumps(providers)},
        )
        yield running
        running.stop()


@pytest.fixture
def page(server: AtriumServer) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server.base, user_agent="Chromium e2e")
        yield context.new_page()
        context.close()
        browser.close()


def test_sign_in_with_the_provider_from_the_hosted_login_page(
    page: Any, server: AtriumServer
) -> None:
    page.goto("/login")
    check_accessibility(page, "login-social", None)
    page.get_by_role("button", name="Continue with Test IdP").click()

    # The provider's own pages: its login form, then its consent form.
    page.locator("input[name=login]").fill("lin@example.com")
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()

    page.wait_for_url(f"{server.base}/account")
    assert page.get_by_text("lin@example.com").first.is_visible()
    page.goto("/account/connections")
    assert page.get_by_role("cell", name="Test IdP", exact=True).is_visible()
    check_accessibility(page, "account-connections", None)


def test_provider_sign_in_of_an_account_with_two_step_verification_asks_for_the_code(
    page: Any, server: AtriumServer
) -> None:
    email = "mfa.social@example.com"
    _register(page, server, email)
    message = server.mail_to(email, "Confirm")
    page.goto(server.link_in(message, "/verify-email"))
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url("**/login?done=email_verified")
    _sign_in(page, email, PASSWORD)
    page.goto("/account/mfa")
    page.get_by_role("button", name="Set up an app").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Recovery codes").wait_for()
    page.goto("/logout")
    page.get_by_role("button", name="Sign out of this browser").click()
    page.wait_for_url("**/login?done=logged_out")

    # The provider vouches for the same verified address: the identity links on it, and
    # the second factor is still asked before any session opens.
    page.goto("/login?next=%2Faccount%2Fconnections")
    page.get_by_role("button", name="Continue with Test IdP").click()
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()

    page.wait_for_url("**/login/mfa?next=%2Faccount%2Fconnections")
    check_accessibility(page, "login-mfa-after-provider", None)
    names = {c["name"] for c in page.context.cookies()}
    assert "__Host-atrium_mfa" in names
    assert "__Host-atrium_session" not in names  # no session before the second factor
    page.get_by_label("Code from your authenticator app").fill(
        str(pyotp.TOTP(secret).at(time.time() + 30))  # the next period's: never reused
    )
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{server.base}/account/connections")
    assert page.get_by_role("cell", name="Test IdP", exact=True).is_visible()
    page.goto("/account/sessions")
    assert page.get_by_text("aal2").first.is_visible()
