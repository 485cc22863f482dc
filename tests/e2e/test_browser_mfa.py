"""Browser test of two-step verification in Debian's Chromium: register → verify → sign in →
set up an authenticator app from the QR code's secret (codes from pyotp) → the recovery
codes → sign out → sign in with the password and, by keyboard only, the code. axe-core
checks every new page (no serious or critical violation); a CSP violation fails."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from tests.e2e import test_browser as base
from tests.e2e.browser import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, AtriumServer
from tests.e2e.test_browser import _check, _open_link, _register, _sign_in

# The fixtures of the browser tests (a server and a Chromium for this module).
server = base.server
chromium = base.chromium
page = base.page

pytestmark = pytest.mark.e2e


def _next_code(secret: str) -> str:
    """The code of the next period: accepted (one step of drift) and never the one just
    used to enrol (each step is accepted once)."""
    return str(pyotp.TOTP(secret).at(time.time() + 30))


def _tab_to(page: Any, element_id: str, presses: int = 30) -> None:
    for _ in range(presses):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == element_id


def test_enrol_an_app_then_sign_in_with_password_and_code(page: Any, server: AtriumServer) -> None:
    _register(page, server, "mfa@example.com")
    message = server.mail_to("mfa@example.com", "Confirm")
    _open_link(page, server.link_in(message, "/verify-email"), "/verify-email")
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url("**/login?done=email_verified")
    _sign_in(page, "mfa@example.com", PASSWORD)

    page.goto("/account/mfa")
    page.get_by_text("Two-step verification is off").wait_for()
    _check(page, "account-mfa")
    page.get_by_role("button", name="Set up an app").click()
    page.get_by_role("img", name="QR code to scan with your authenticator app").wait_for()
    _check(page, "account-mfa-totp")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Recovery codes").wait_for()
    _check(page, "account-mfa-codes")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as text").click()
    assert download.value.suggested_filename == "recovery-codes.txt"
    page.goto("/account/mfa")
    page.get_by_text("Two-step verification is on").wait_for()
    page.goto("/account/reauth")
    _check(page, "account-reauth")

    page.goto("/logout")
    page.get_by_role("button", name="Sign out of this browser").click()
    page.wait_for_url("**/login?done=logged_out")

    # Keyboard only: email, password, Enter; then the code, Enter.
    page.goto("/login")
    _tab_to(page, "email")
    page.keyboard.type("mfa@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/mfa*")
    _check(page, "login-mfa")
    _tab_to(page, "code")
    page.keyboard.type(_next_code(secret))
    page.keyboard.press("Enter")
    page.wait_for_url("**/account")
    page.goto("/account/sessions")
    assert page.get_by_text("aal2").first.is_visible()


def _account_with_an_app(server: AtriumServer, email: str) -> None:
    """An account (email verified from its link) with an authenticator app, set up through
    the API."""
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        link = server.link_in(server.mail_to(email, "Confirm"), "/verify-email")
        token = parse_qs(urlsplit(link).query)["token"][0]
        assert http.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 204
        tokens = http.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        ).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        started = http.post("/api/v1/users/me/mfa/totp", json={"name": "Phone"}, headers=auth)
        assert started.status_code == 201, started.text
        factor = started.json()
        verified = http.post(
            f"/api/v1/users/me/mfa/totp/{factor['factor_id']}/verify",
            json={"code": pyotp.TOTP(factor["secret"]).now()},
            headers=auth,
        )
        assert verified.status_code == 200, verified.text


def test_an_admin_resets_the_second_factor_of_an_account(page: Any, server: AtriumServer) -> None:
    """Runs last in this module: the admin account ends with an app of its own."""
    _account_with_an_app(server, "lost@example.com")
    _sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/admin/users?q=lost%40")
    page.locator("#results").get_by_role("link", name="lost@example.com").click()
    page.wait_for_url("**/admin/users/*")
    assert page.locator("#user-mfa").inner_text() == "On: 1 method"
    page.get_by_role("button", name="Reset two-step verification…").click()
    # The reset needs a recent sign-in at aal2: without a second factor of its own the
    # admin is told so, and there is nothing to press.
    page.get_by_role("alert").filter(has_text="set it up on your own account first").wait_for()
    assert page.get_by_role("button", name="Reset two-step verification").count() == 0
    _check(page, "admin-user-mfa-reset-refused")

    page.get_by_role("link", name="Set up two-step verification").click()
    page.get_by_role("button", name="Set up an app").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Recovery codes").wait_for()

    # The browser's session is now at aal2.
    page.goto("/admin/users?q=lost%40")
    page.locator("#results").get_by_role("link", name="lost@example.com").click()
    page.wait_for_url("**/admin/users/*")
    page.get_by_role("button", name="Reset two-step verification…").click()
    page.wait_for_url("**/mfa/reset")
    page.get_by_text("The owner is told by email").wait_for()
    _check(page, "admin-user-mfa-reset")
    page.get_by_role("button", name="Reset two-step verification", exact=True).click()
    page.wait_for_url("**?done=mfa_reset")
    assert page.locator("#user-mfa").inner_text() == "Off"
    assert page.get_by_text("admin.mfa_reset").first.is_visible()
    assert server.mail_to("lost@example.com", "was reset")  # the owner is told
