"""Signing in on the pages with a second factor: the password, then ``/login/mfa`` (a
TOTP code or a recovery code) with the API's rules — the token in an ``HttpOnly`` cookie,
never in a URL; wrong codes in the account's login throttle; the session at aal2;
"remember this device"."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from atrium.config import RateLimitSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuthSession
from tests.factories import PASSWORD
from tests.mfa.helpers import MfaAccount, events, mfa_account, totp_code
from tests.ui.conftest import csrf_of, post_form

MFA_COOKIE = "__Host-atrium_mfa"
SESSION_COOKIE = "__Host-atrium_session"
DEVICE_COOKIE = "__Host-atrium_device"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Three failures per account before the growing delay (as in production, lower)."""
    limits = RateLimitSettings(
        registration="100000/minute",
        login="100000/minute",
        refresh="100000/minute",
        login_failures_per_account=3,
        login_failures_per_ip=100000,
    )
    return settings.model_copy(update={"rate_limit": limits})


async def password_step(browser: httpx.AsyncClient, account: MfaAccount) -> httpx.Response:
    response = await post_form(
        browser,
        "/login",
        "/login",
        {"email": account.email, "password": PASSWORD, "next": "/account"},
    )
    return response


async def browser_sessions(ctx: AppContext, user_id: str) -> list[AuthSession]:
    async with ctx.sessionmaker() as db:
        rows = await db.execute(
            select(AuthSession).where(
                AuthSession.user_id == uuid.UUID(user_id),
                AuthSession.user_agent == "pytest-browser",
                AuthSession.revoked_at.is_(None),
            )
        )
        return list(rows.scalars())


async def test_password_then_code_opens_an_aal2_browser_session(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)

    first = await password_step(browser, account)

    assert first.status_code == 303, first.text
    assert first.headers["location"] == "/login/mfa?next=%2Faccount"
    assert browser.cookies.get(MFA_COOKIE)  # the mfa_token, HttpOnly, never in the URL
    assert browser.cookies.get(MFA_COOKIE) not in first.headers["location"]
    assert "httponly" in first.headers["set-cookie"].lower()
    assert browser.cookies.get(SESSION_COOKIE) is None
    assert await browser_sessions(ctx, account.id) == []

    page = await browser.get("/login/mfa?next=%2Faccount")
    assert page.status_code == 200
    assert 'autocomplete="one-time-code"' in page.text
    assert 'name="remember_device"' in page.text

    wrong = await browser.post(
        "/login/mfa",
        data={
            "code": totp_code(account.secret, clock, steps=5),
            "next": "/account",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert wrong.status_code == 401
    assert "The code is not valid" in wrong.text
    assert browser.cookies.get(SESSION_COOKIE) is None

    right = await browser.post(
        "/login/mfa",
        data={
            "code": totp_code(account.secret, clock),
            "next": "/account",
            "csrf_token": csrf_of(wrong.text),
        },
    )
    assert right.status_code == 303, right.text
    assert right.headers["location"] == "/account"
    assert browser.cookies.get(SESSION_COOKIE)
    assert browser.cookies.get(MFA_COOKIE) is None
    assert browser.cookies.get(DEVICE_COOKIE) is None
    sessions = await browser_sessions(ctx, account.id)
    assert len(sessions) == 1
    assert sessions[0].aal == 2
    assert set(sessions[0].amr) == {"pwd", "otp", "mfa"}
    assert (await browser.get("/account")).status_code == 200

    # The token was spent: the second step cannot be replayed with the old cookie.
    assert (await browser.get("/login/mfa")).headers["location"] == "/login"


async def test_a_recovery_code_works_once(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    code = account.recovery_codes[0]

    await password_step(browser, account)
    page = await browser.get("/login/mfa")
    used = await browser.post(
        "/login/mfa", data={"recovery_code": code.lower(), "csrf_token": csrf_of(page.text)}
    )
    assert used.status_code == 303, used.text
    assert (await browser_sessions(ctx, account.id))[0].aal == 2

    await browser.post("/logout", data={"csrf_token": csrf_of((await browser.get("/logout")).text)})
    await password_step(browser, account)
    page = await browser.get("/login/mfa")
    again = await browser.post(
        "/login/mfa", data={"recovery_code": code, "csrf_token": csrf_of(page.text)}
    )
    assert again.status_code == 401
    assert "The code is not valid" in again.text


async def test_wrong_codes_count_in_the_accounts_login_throttle(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    await password_step(browser, account)
    page = await browser.get("/login/mfa")
    wrong = totp_code(account.secret, clock, steps=5)

    answers = []
    for _ in range(4):
        answer = await browser.post(
            "/login/mfa", data={"code": wrong, "csrf_token": csrf_of(page.text)}
        )
        answers.append(answer.status_code)

    assert answers == [401, 401, 401, 429]
    assert len(await events(ctx, "auth.mfa_failed")) == 3
    assert len(await events(ctx, "auth.login_throttled")) == 1
    assert browser.cookies.get(SESSION_COOKIE) is None


async def test_remember_this_device_skips_the_second_step_next_time(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    await password_step(browser, account)
    page = await browser.get("/login/mfa")
    done = await browser.post(
        "/login/mfa",
        data={
            "code": totp_code(account.secret, clock),
            "remember_device": "1",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert done.status_code == 303, done.text
    assert browser.cookies.get(DEVICE_COOKIE)
    assert len(await events(ctx, "mfa.trusted_device_added")) == 1

    await browser.post("/logout", data={"csrf_token": csrf_of((await browser.get("/logout")).text)})
    again = await password_step(browser, account)

    assert again.status_code == 303
    assert again.headers["location"] == "/account"
    sessions = await browser_sessions(ctx, account.id)
    assert len(sessions) == 1
    assert sessions[0].aal == 1  # the device skips the second factor, not its level


async def test_the_second_step_needs_the_csrf_token_and_a_pending_sign_in(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    assert (await browser.get("/login/mfa")).headers["location"] == "/login"

    await password_step(browser, account)
    refused = await browser.post("/login/mfa", data={"code": totp_code(account.secret, clock)})
    assert refused.status_code == 403
    assert browser.cookies.get(SESSION_COOKIE) is None

    browser.cookies.delete(MFA_COOKIE)
    page = await browser.get("/login")
    expired = await browser.post(
        "/login/mfa",
        data={"code": totp_code(account.secret, clock), "csrf_token": csrf_of(page.text)},
    )
    assert expired.status_code == 401
    assert "Sign in again" in expired.text
