"""Browser test of passkeys in Debian's Chromium with its virtual authenticator (DevTools
protocol ``WebAuthn.addVirtualAuthenticator``: CTAP2, internal, resident keys, user
verification): register → verify the email → sign in → add a passkey on
``/account/passkeys`` → confirm it is you with it on ``/account/reauth`` → sign out →
sign in with the passkey alone → sign out → the password, then the passkey as the second
step on ``/login/mfa`` → rename and remove it. axe-core checks every new page (no serious
or critical violation); a CSP violation fails (the ceremonies run from the hashed static
scripts only).

WebAuthn needs a relying party id that is a domain, not an IP address: this module's
server is reached as ``localhost`` (a secure context, like 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import test_browser as base
from tests.e2e.browser import AXE, CHROMIUM, PASSWORD, AtriumServer, free_port
from tests.e2e.test_browser import _check, _open_link, _register, _sign_in

chromium = base.chromium

pytestmark = pytest.mark.e2e

EMAIL = "passkey@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtriumServer]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert AXE.exists(), f"{AXE} is missing: npm ci"
    port = free_port()
    running = AtriumServer(
        tmp_path_factory.mktemp("passkeys"),
        port=port,
        env={"ATRIUM_MAIL__LINK_BASE_URL": f"http://localhost:{port}"},
    )
    running.base = f"http://localhost:{port}"  # links in emails and the pages' origin
    yield running
    running.stop()


@pytest.fixture
def page(chromium: Any, server: AtriumServer) -> Iterator[Any]:
    context = chromium.new_context(base_url=server.base, user_agent="Chromium e2e")
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if "Content Security Policy" in m.text or m.text.startswith("passkey:")
            else None
        ),
    )
    page.on("dialog", lambda dialog: dialog.accept())  # "Remove this passkey?"
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.authenticator = (cdp, added["authenticatorId"])
    yield page
    context.close()
    assert not problems, problems


def _credentials(page: Any) -> list[dict[str, Any]]:
    cdp, authenticator_id = page.authenticator
    found: list[dict[str, Any]] = cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": authenticator_id}
    )["credentials"]
    return found


def _sign_out(page: Any) -> None:
    page.goto("/logout")
    page.get_by_role("button", name="Sign out of this browser").click()
    page.wait_for_url("**/login?done=logged_out")


def test_add_a_passkey_then_sign_in_with_it_alone_and_as_second_step(
    page: Any, server: AtriumServer
) -> None:
    _register(page, server, EMAIL)
    message = server.mail_to(EMAIL, "Confirm")
    _open_link(page, server.link_in(message, "/verify-email"), "/verify-email")
    page.get_by_role("button", name="Confirm my email address").click()
    page.wait_for_url("**/login?done=email_verified")
    _sign_in(page, EMAIL, PASSWORD)

    # Add a passkey: the browser creates a discoverable credential on the authenticator.
    page.goto("/account/passkeys")
    page.get_by_text("No passkey yet.").wait_for()
    _check(page, "account-passkeys")
    page.get_by_label("Name", exact=True).fill("Chromium")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url("**/account/passkeys?done=passkey_added")
    page.get_by_role("cell", name="Chromium", exact=True).wait_for()
    _check(page, "account-passkeys-added")
    [credential] = _credentials(page)
    assert credential["isResidentCredential"] is True

    # The account has MFA now; this aal1 session confirms it is you with the passkey.
    page.goto("/account/reauth?next=/account/passkeys")
    _check(page, "account-reauth-passkey")
    assert page.get_by_label("Password").count() == 0
    page.get_by_role("button", name="Confirm with a passkey").click()
    page.wait_for_url("**/account/passkeys?done=reauthenticated")
    counter_after_reauth = _credentials(page)[0]["signCount"]
    assert counter_after_reauth >= 1
    _sign_out(page)

    # Passwordless: the passkey alone, user verified by the authenticator (aal2).
    _check(page, "login-passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url("**/account")
    page.goto("/account/sessions")
    assert page.get_by_text("aal2").first.is_visible()
    _sign_out(page)

    # The password, then the passkey as the second step.
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/login/mfa*")
    page.get_by_role("button", name="Use a passkey").wait_for()
    assert page.locator("#code").count() == 0  # no authenticator app on this account
    _check(page, "login-mfa-passkey")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/account*")
    assert _credentials(page)[0]["signCount"] > counter_after_reauth

    # Rename, then remove (the session is at aal2 and fresh: no re-authentication).
    page.goto("/account/passkeys")
    page.get_by_label("New name for Chromium").fill("Work laptop")
    page.get_by_role("button", name="Save name").click()
    page.wait_for_url("**/account/passkeys?done=passkey_renamed")
    page.get_by_role("cell", name="Work laptop", exact=True).wait_for()
    page.get_by_role("button", name="Remove Work laptop").click()
    page.wait_for_url("**/account/passkeys?done=passkey_removed")
    page.get_by_text("No passkey yet.").wait_for()
    _check(page, "account-passkeys-removed")
