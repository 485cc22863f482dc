"""Browser tests: Playwright drives Debian's Chromium against ``atrium serve``.

Each page visited is checked with axe-core (no serious or critical violation) and, with
``ATRIUM_UI_SCREENSHOTS=<folder>``, photographed (docs/ui/ holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.browser import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    AtriumServer,
    check_accessibility,
)

pytestmark = pytest.mark.e2e

sync_api = pytest.importorskip("playwright.sync_api")

SHOTS = (
    Path(os.environ["ATRIUM_UI_SCREENSHOTS"]) if os.environ.get("ATRIUM_UI_SCREENSHOTS") else None
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtriumServer]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert AXE.exists(), f"{AXE} is missing: npm ci"
    running = AtriumServer(tmp_path_factory.mktemp("browser"))
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


def _sign_in(page: Any, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/account*")


def _register(page: Any, server: AtriumServer, email: str) -> None:
    page.goto("/register")
    _check(page, "register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    _check(page, "registered")


def _open_link(page: Any, link: str, path: str) -> None:
    page.goto(link)
    assert urlsplit(page.url).path == path
    assert "token" not in page.url


def test_register_verify_from_the_email_then_sign_in(page: Any, server: AtriumServer) -> None:
    page.goto("/login")
    _check(page, "login")
    _register(page, server, "ada@example.com")
    message = server.mail_to("ada@example.com", "Confirm")
    _open_link(page, server.link_in(message, "/verify-email"), "/verify-email")
    _check(page, "verify-email")
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url("**/login?done=email_verified")
    page.get_by_role("status").filter(has_text="verified").wait_for()
    _sign_in(page, "ada@example.com", PASSWORD)
    assert page.get_by_text("Verified", exact=True).first.is_visible()
    _check(page, "account-profile")
    for path, name in [
        ("/account/preferences", "account-preferences"),
        ("/account/email", "account-email"),
        ("/account/password", "account-password"),
        ("/account/sessions", "account-sessions"),
        ("/account/api-keys", "account-api-keys"),
        ("/account/security", "account-security"),
        ("/account/delete", "account-delete"),
    ]:
        page.goto(path)
        _check(page, name)
    # An API key, created on its page and shown once.
    page.goto("/account/api-keys")
    page.get_by_label("Name").fill("CI deploy")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("heading", name="Your new key").wait_for()
    assert page.get_by_role("textbox", name="Key").input_value().startswith("atr_pat_")
    _check(page, "account-api-key-created")
    page.goto("/logout")
    _check(page, "logout")
    page.get_by_role("button", name="Sign out of this browser").click()
    page.wait_for_url("**/login?done=logged_out")


def test_preferences_apply_to_the_pages(page: Any, server: AtriumServer) -> None:
    _register(page, server, "prefs@example.com")
    _sign_in(page, "prefs@example.com", PASSWORD)
    page.goto("/account/preferences")
    page.get_by_label("Dark").check()
    page.get_by_label("High contrast").check()
    page.get_by_label("Text size").select_option("125")
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_url("**/account/preferences?done=preferences_saved")
    html = page.locator("html")
    assert html.get_attribute("data-theme") == "dark"
    assert html.get_attribute("lang") == "es"
    assert html.get_attribute("data-font-scale") == "125"
    assert "high-contrast" in (html.get_attribute("class") or "")
    page.get_by_role("heading", name="Preferencias").wait_for()
    _check(page, "account-preferences-dark-es")


def test_forgot_and_reset_password(page: Any, server: AtriumServer) -> None:
    _register(page, server, "grace@example.com")
    page.goto("/forgot-password")
    _check(page, "forgot-password")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_role("button", name="Send the link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    message = server.mail_to("grace@example.com", "Reset")
    _open_link(page, server.link_in(message, "/reset-password"), "/reset-password")
    _check(page, "reset-password")
    page.get_by_label("New password", exact=True).fill("a brand new passphrase")
    page.get_by_label("Repeat the new password").fill("a brand new passphrase")
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url("**/login?done=password_reset")
    _sign_in(page, "grace@example.com", "a brand new passphrase")
    # The new password opened a session: the account page names its owner.
    assert page.get_by_text("Signed in as grace@example.com.").is_visible()


def test_email_change(page: Any, server: AtriumServer) -> None:
    _register(page, server, "old@example.com")
    _sign_in(page, "old@example.com", PASSWORD)
    page.goto("/account/email")
    page.get_by_label("New email address").fill("new@example.com")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Send a confirmation link").click()
    page.wait_for_url("**/account/email?done=email_change_sent")
    message = server.mail_to("new@example.com", "Confirm")
    _open_link(page, server.link_in(message, "/confirm-email"), "/confirm-email-change")
    _check(page, "confirm-email-change")
    page.get_by_role("button", name="Confirm my new email address").click()
    page.wait_for_url("**/account?done=email_changed")
    assert page.get_by_text("Signed in as new@example.com.").is_visible()


def test_a_form_without_its_csrf_token_is_refused(page: Any, server: AtriumServer) -> None:
    page.goto("/login")
    page.evaluate("document.querySelector('main input[name=csrf_token]').remove()")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    response_status: list[int] = []
    page.on(
        "response",
        lambda r: response_status.append(r.status) if r.request.method == "POST" else None,
    )
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("alert").filter(has_text="The form has expired").wait_for()
    assert response_status == [403]
    assert "__Host-atrium_session" not in {c["name"] for c in page.context.cookies()}


def test_session_revoked_from_the_api_signs_the_browser_out(
    page: Any, server: AtriumServer
) -> None:
    _register(page, server, "rev@example.com")
    _sign_in(page, "rev@example.com", PASSWORD)
    with httpx.Client(base_url=server.base, timeout=10) as http:
        tokens = http.post(
            "/api/v1/auth/login", data={"username": "rev@example.com", "password": PASSWORD}
        ).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        sessions = http.get("/api/v1/users/me/sessions", headers=auth).json()
        (mine,) = [s for s in sessions if s["user_agent"] == "Chromium e2e"]
        assert (
            http.delete(f"/api/v1/users/me/sessions/{mine['id']}", headers=auth).status_code == 204
        )
    page.goto("/account/sessions")
    page.wait_for_url("**/login?next=%2Faccount%2Fsessions")


def test_keyboard_only_sign_in(page: Any, server: AtriumServer) -> None:
    page.goto("/login")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "email":
            break
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type(ADMIN_EMAIL)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/account")
    # The admin users list, by keyboard: focus the search, type, submit, open a result.
    page.goto("/admin/users")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("root@")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/users?q=root%40*")
    link = page.get_by_role("link", name=ADMIN_EMAIL)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == ADMIN_EMAIL:
            break
    assert page.evaluate("document.activeElement.textContent") == ADMIN_EMAIL
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/users/*")
    assert link is not None


def test_admin_searches_suspends_grants_reads_audit_and_charts(
    page: Any, server: AtriumServer
) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.post(
            "/api/v1/auth/register", json={"email": "target@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
    _sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/admin")
    page.locator("[data-chart=registrations][data-drawn=true]").wait_for()
    assert page.locator("[data-chart] canvas").count() == 3
    _check(page, "admin-overview")
    page.goto("/admin/users")
    _check(page, "admin-users")
    page.get_by_label("Search").fill("target@")
    # htmx replaces the results (and pushes the search into the URL) as one types.
    page.wait_for_url("**/admin/users?q=target%40*")
    page.locator("#results").get_by_role("link", name=ADMIN_EMAIL).wait_for(state="detached")
    page.locator("#results").get_by_role("link", name="target@example.com").wait_for()
    page.locator("#results").get_by_role("link", name="target@example.com").click()
    page.wait_for_url("**/admin/users/*")
    _check(page, "admin-user")
    page.get_by_role("button", name="Suspend").click()
    page.wait_for_url("**?done=suspended")
    assert page.locator("#user-status").inner_text() == "suspended"
    page.get_by_label("Grant a role").select_option("moderator")
    page.get_by_role("button", name="Grant", exact=True).click()
    page.wait_for_url("**?done=role_granted")
    assert "moderator" in page.locator("#user-roles").inner_text()
    page.get_by_role("link", name="All events of this account").click()
    page.wait_for_url("**/admin/audit?target_id=*")
    assert page.get_by_text("admin.user_suspended").is_visible()
    assert page.get_by_text("role.granted").is_visible()
    _check(page, "admin-audit")
    page.get_by_role("link").filter(has_text="UTC").first.click()
    page.wait_for_url("**/admin/audit/*")
    _check(page, "admin-audit-event")
    for path, name in [
        ("/admin/roles", "admin-roles"),
        ("/admin/roles/moderator", "admin-role"),
        ("/admin/outbox", "admin-outbox"),
        ("/admin/health", "admin-health"),
    ]:
        page.goto(path)
        _check(page, name)


def test_admin_analytics_page_draws_its_charts(page: Any, server: AtriumServer) -> None:
    _sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/admin")
    page.get_by_role("link", name="Analytics").click()
    page.wait_for_url("**/admin/analytics")
    page.get_by_label("Interval").select_option("week")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/admin/analytics?*interval=week*")
    for key in ("active", "registrations", "logins", "adoption", "devices"):
        page.locator(f"[data-analytics-chart={key}][data-drawn=true]").wait_for()
    assert page.locator("[data-analytics-chart] canvas").count() == 5
    assert (
        page.locator("[data-analytics-chart=logins] .u-legend").inner_text().count("Password") == 2
    )
    _check(page, "admin-analytics")


def test_chromium_is_the_system_one() -> None:
    assert shutil.which("chromium") == CHROMIUM or Path(CHROMIUM).exists()
