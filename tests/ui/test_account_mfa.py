"""The account's two-step verification pages: enrol an authenticator app (QR code and
secret shown once, confirmed with a code), the recovery codes shown once, regenerate,
remove, trusted devices; the re-authentication page when the API's step-up rule asks for
it. Every form goes through the MFA services, with their audit events and notices."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuthSession
from tests.factories import PASSWORD, register
from tests.mfa.helpers import VERIFY, events, mails, password_step, totp_code, verify_email
from tests.ui.conftest import csrf_of, post_form, sign_in

SESSION_COOKIE = "__Host-atrium_session"
SECRET = re.compile(r'<code id="totp-secret" class="monospace">([A-Z2-7 ]+)</code>')
CODE = re.compile(r"<li><code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code></li>")
VERIFY_ACTION = re.compile(r'action="(/account/mfa/totp/[0-9a-f-]{36}/verify)"')


async def signed_in(browser: httpx.AsyncClient, ctx: AppContext, email: str) -> str:
    user = await register(browser, email)
    await verify_email(ctx, user["id"])
    await sign_in(browser, email)
    return str(user["id"])


async def enrol(
    browser: httpx.AsyncClient, clock: FrozenClock
) -> tuple[str, list[str], httpx.Response]:
    """Enrol an app from the pages; (secret, recovery codes, the codes page)."""
    started = await post_form(browser, "/account/mfa", "/account/mfa/totp", {"name": "Phone"})
    assert started.status_code == 200, started.text
    secret_match = SECRET.search(started.text)
    action = VERIFY_ACTION.search(started.text)
    assert secret_match, started.text
    assert action
    secret = secret_match.group(1).replace(" ", "")
    done = await browser.post(
        action.group(1),
        data={"code": totp_code(secret, clock), "csrf_token": csrf_of(started.text)},
    )
    assert done.status_code == 200, done.text
    clock.advance(seconds=30)
    return secret, CODE.findall(done.text), done


async def test_enrol_an_app_from_the_page_turns_mfa_on(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user_id = await signed_in(browser, ctx, "ada@example.com")
    page = await browser.get("/account/mfa")
    assert page.status_code == 200
    assert "Two-step verification is off" in page.text

    started = await post_form(browser, "/account/mfa", "/account/mfa/totp", {"name": "Phone"})
    assert started.status_code == 200, started.text
    assert started.headers["cache-control"] == "no-store"
    assert 'src="data:image/svg+xml;base64,' in started.text  # the service's QR code
    secret_match = SECRET.search(started.text)
    action = VERIFY_ACTION.search(started.text)
    assert secret_match
    assert action
    secret = secret_match.group(1).replace(" ", "")
    assert len(secret) == 32

    wrong = await browser.post(
        action.group(1),
        data={"code": totp_code(secret, clock, steps=5), "csrf_token": csrf_of(started.text)},
    )
    assert wrong.status_code == 422
    assert "The code is not valid" in wrong.text

    old_cookie = browser.cookies.get(SESSION_COOKIE)
    done = await browser.post(
        action.group(1),
        data={"code": totp_code(secret, clock), "csrf_token": csrf_of(wrong.text)},
    )
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    codes = CODE.findall(done.text)
    assert len(codes) == 10
    assert 'download="recovery-codes.txt"' in done.text
    assert codes[0] in done.text.split('href="data:text/plain;charset=utf-8,')[1].split('"')[0]

    # The session was raised to aal2 with a new refresh token in the cookie; the old one
    # no longer signs in.
    new_cookie = browser.cookies.get(SESSION_COOKIE)
    assert new_cookie
    assert new_cookie != old_cookie
    async with ctx.sessionmaker() as db:
        rows = await db.execute(
            select(AuthSession).where(
                AuthSession.user_id == uuid.UUID(user_id), AuthSession.revoked_at.is_(None)
            )
        )
        assert [s.aal for s in rows.scalars()] == [2]
    page = await browser.get("/account/mfa")
    assert "Two-step verification is on" in page.text
    assert "Phone" in page.text
    assert "10 recovery codes left" in page.text
    assert len(await events(ctx, "mfa.factor_added")) == 1
    stale = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=browser._transport.app),  # type: ignore[attr-defined]
        base_url="https://atrium.test",
        cookies={SESSION_COOKIE: str(old_cookie)},
    )
    async with stale:
        assert (await stale.get("/account/mfa")).status_code == 303

    # The next sign-in asks for the code.
    clock.advance(seconds=30)
    assert (await password_step(client, "ada@example.com")).json()["code"] == "mfa_required"


async def test_step_up_then_regenerate_codes_and_remove_the_app(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    secret, codes, _ = await enrol(browser, clock)
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)

    asked = await post_form(browser, "/account/mfa", "/account/mfa/recovery-codes", {})
    assert asked.status_code == 303
    assert asked.headers["location"] == "/account/reauth?next=%2Faccount%2Fmfa"
    reauth = await browser.get(asked.headers["location"])
    assert reauth.status_code == 200
    assert 'name="code"' in reauth.text
    assert 'name="password"' in reauth.text

    wrong = await browser.post(
        "/account/reauth",
        data={"password": "not it", "next": "/account/mfa", "csrf_token": csrf_of(reauth.text)},
    )
    assert wrong.status_code == 401
    refreshed = await browser.post(
        "/account/reauth",
        data={
            "code": totp_code(secret, clock),
            "next": "/account/mfa",
            "csrf_token": csrf_of(wrong.text),
        },
    )
    assert refreshed.status_code == 303, refreshed.text
    assert refreshed.headers["location"] == "/account/mfa?done=reauthenticated"
    assert len(await events(ctx, "auth.step_up")) == 1

    regenerated = await post_form(browser, "/account/mfa", "/account/mfa/recovery-codes", {})
    assert regenerated.status_code == 200, regenerated.text
    new_codes = CODE.findall(regenerated.text)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(codes)
    # The old set no longer works at sign-in.
    token = (await password_step(client, "ada@example.com")).json()["mfa_token"]
    old = await client.post(
        VERIFY,
        json={"mfa_token": token, "recovery_code": codes[0]},
        headers={"User-Agent": "pytest"},
    )
    assert old.status_code == 401

    page = await browser.get("/account/mfa")
    factor = re.search(r'action="(/account/mfa/[0-9a-f-]{36}/remove)"', page.text)
    assert factor
    removed = await browser.post(factor.group(1), data={"csrf_token": csrf_of(page.text)})
    assert removed.status_code == 303
    assert removed.headers["location"] == "/account/mfa?done=factor_removed"
    after = await browser.get(removed.headers["location"])
    assert "Two-step verification is off" in after.text
    assert "Authenticator app removed." in after.text
    assert len(await mails(ctx, "mfa_disabled")) == 1  # the last factor: MFA is off
    assert (await password_step(client, "ada@example.com")).status_code == 200


async def test_a_stale_session_is_sent_to_reauth_before_enrolling(
    browser: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)
    asked = await post_form(browser, "/account/mfa", "/account/mfa/totp", {"name": "Phone"})
    assert asked.status_code == 303
    reauth = await browser.get(asked.headers["location"])
    assert 'name="code"' not in reauth.text  # no factor yet: the password
    back = await browser.post(
        "/account/reauth",
        data={"password": PASSWORD, "next": "/account/mfa", "csrf_token": csrf_of(reauth.text)},
    )
    assert back.status_code == 303
    started = await post_form(browser, "/account/mfa", "/account/mfa/totp", {"name": "Phone"})
    assert started.status_code == 200
    assert SECRET.search(started.text)


async def test_reauth_returns_only_to_account_pages(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    page = await browser.get("/account/reauth?next=https://evil.example/")
    back = await browser.post(
        "/account/reauth",
        data={"password": PASSWORD, "next": "//evil.example", "csrf_token": csrf_of(page.text)},
    )
    assert back.headers["location"] == "/account/mfa?done=reauthenticated"


async def test_an_unverified_email_cannot_enrol_and_forms_need_the_csrf_token(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(browser, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    page = await browser.get("/account/mfa")
    assert "Verify your email address first." in page.text
    refused = await browser.post(
        "/account/mfa/totp", data={"name": "Phone", "csrf_token": csrf_of(page.text)}
    )
    assert refused.status_code == 403
    assert "totp-secret" not in refused.text
    assert (await browser.post("/account/mfa/totp", data={"name": "Phone"})).status_code == 403
    assert await events(ctx, "mfa.factor_added") == []


async def test_trusted_devices_are_listed_and_revoked(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    secret, _codes, _ = await enrol(browser, clock)
    token = (await password_step(client, "ada@example.com")).json()["mfa_token"]
    remembered = await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(secret, clock), "remember_device": True},
        headers={"User-Agent": "pytest"},
    )
    assert remembered.status_code == 200, remembered.text
    page = await browser.get("/account/mfa")
    device = re.search(r'action="(/account/mfa/devices/[0-9a-f-]{36}/revoke)"', page.text)
    assert device, page.text
    revoked = await browser.post(device.group(1), data={"csrf_token": csrf_of(page.text)})
    assert revoked.headers["location"] == "/account/mfa?done=device_revoked"
    assert "No trusted devices." in (await browser.get("/account/mfa")).text
    device_token = remembered.json()["device_token"]
    again = await password_step(client, "ada@example.com", device_token=device_token)
    assert again.json()["code"] == "mfa_required"
