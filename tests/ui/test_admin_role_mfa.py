"""The console applies the API's rule for roles that require MFA (the built-in ``admin``
does): an aal1 browser session of a holder with a factor is sent to confirm it with a
code; without a factor after the grace period, the console is refused."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from atrium.config import MfaSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import grant_role
from tests.mfa.helpers import mfa_account, totp_code
from tests.ui.conftest import csrf_of, post_form
from tests.ui.test_account_mfa import signed_in
from tests.ui.test_login_mfa import password_step

GRACE = 86_400


@pytest.fixture
def settings(settings: Settings) -> Settings:
    mfa = MfaSettings(role_requirement_enabled=True, enrollment_grace_period_seconds=GRACE)
    return settings.model_copy(update={"mfa": mfa})


async def test_an_aal1_session_of_an_admin_with_a_factor_is_asked_for_a_code(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock, "root@example.com")
    await grant_role(ctx, account.id, "admin")
    # Password and code, this device remembered; then a sign-in with the password alone
    # (the remembered device skips the second factor, not its level): aal1.
    await password_step(browser, account)
    page = await browser.get("/login/mfa")
    code = {"code": totp_code(account.secret, clock), "remember_device": "1"}
    done = await browser.post("/login/mfa", data={**code, "csrf_token": csrf_of(page.text)})
    assert done.status_code == 303, done.text
    await post_form(browser, "/logout", "/logout", {})
    assert (await password_step(browser, account)).headers["location"] == "/account"
    clock.advance(seconds=30)

    asked = await browser.get("/admin/users?q=ada")

    assert asked.status_code == 303
    back = "/admin/users?q=ada"
    assert asked.headers["location"] == "/account/reauth?next=" + quote(back, safe="")
    confirmed = await post_form(
        browser,
        asked.headers["location"],
        "/account/reauth",
        {"code": totp_code(account.secret, clock), "next": back},
    )
    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"] == back + "&done=reauthenticated"
    assert (await browser.get("/admin/users")).status_code == 200


async def test_an_admin_without_a_factor_after_the_grace_period_is_refused(
    browser: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    admin_id = await signed_in(browser, ctx, "root@example.com")
    await grant_role(ctx, admin_id, "admin")
    clock.advance(seconds=GRACE + 1)

    refused = await browser.get("/admin/users")

    assert refused.status_code == 403
    assert "requires two-step verification" in refused.text
    assert (await browser.get("/account/mfa")).status_code == 200  # where to set it up
