"""Passkeys on the pages, driven as the page's script drives them (options from the JSON
routes, the credential posted in the form's hidden field), with real assertions of the
software authenticator: add, rename, remove after a re-authentication with the passkey;
sign in without a password; the passkey as the second step after the password; CSRF."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.mfa.helpers import events
from tests.passkeys.authenticator import SoftAuthenticator
from tests.ui.conftest import csrf_of, post_form, sign_in
from tests.ui.test_account_mfa import signed_in

SESSION_COOKIE = "__Host-atrium_session"
REMOVE = re.compile(r'action="(/account/passkeys/[0-9a-f-]{36}/remove)"')
RENAME = re.compile(r'action="(/account/passkeys/[0-9a-f-]{36}/rename)"')


async def options(browser: httpx.AsyncClient, page: str, route: str) -> dict[str, Any]:
    """What the script does first: POST the page's CSRF token to an options route."""
    token = csrf_of((await browser.get(page)).text)
    response = await browser.post(route, data={"csrf_token": token})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


async def add_passkey(
    browser: httpx.AsyncClient, authenticator: SoftAuthenticator, name: str = "Laptop"
) -> httpx.Response:
    answer = await options(browser, "/account/passkeys", "/account/passkeys/options")
    credential = authenticator.create(answer["public_key"])
    return await post_form(
        browser,
        "/account/passkeys",
        "/account/passkeys",
        {"credential": json.dumps(credential), "name": name},
    )


async def reauth_with_passkey(
    browser: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> httpx.Response:
    page = "/account/reauth?next=/account/passkeys"
    answer = await options(browser, page, "/account/reauth/passkey/options")
    credential = authenticator.get(answer["public_key"])
    return await post_form(
        browser,
        page,
        "/account/reauth",
        {"credential": json.dumps(credential), "next": "/account/passkeys"},
    )


async def test_add_rename_and_remove_a_passkey_from_the_pages(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    authenticator = SoftAuthenticator()

    added = await add_passkey(browser, authenticator)
    assert (added.status_code, added.headers["location"]) == (
        303,
        "/account/passkeys?done=passkey_added",
    )
    page = await browser.get("/account/passkeys")
    assert "Laptop" in page.text
    assert "Passkey added." in (await browser.get(added.headers["location"])).text
    rename = RENAME.search(page.text)
    assert rename
    renamed = await browser.post(
        rename.group(1), data={"name": "Work laptop", "csrf_token": csrf_of(page.text)}
    )
    assert renamed.status_code == 303
    page = await browser.get("/account/passkeys")
    assert "Work laptop" in page.text

    # Removing changes the account's factors: at aal1 with MFA on, confirm first.
    remove = REMOVE.search(page.text)
    assert remove
    refused = await browser.post(remove.group(1), data={"csrf_token": csrf_of(page.text)})
    assert refused.headers["location"] == "/account/reauth?next=%2Faccount%2Fpasskeys"
    reauth_page = await browser.get("/account/reauth?next=/account/passkeys")
    assert "Confirm with a passkey" in reauth_page.text
    assert 'name="password"' not in reauth_page.text  # aal1 with MFA: a second factor
    confirmed = await reauth_with_passkey(browser, authenticator)
    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"] == "/account/passkeys?done=reauthenticated"
    page = await browser.get("/account/passkeys")  # the session's token (and CSRF) rotated
    removed = await browser.post(remove.group(1), data={"csrf_token": csrf_of(page.text)})

    assert removed.headers["location"] == "/account/passkeys?done=passkey_removed"
    assert "No passkey yet." in (await browser.get("/account/passkeys")).text
    actions = {e.action for e in await events(ctx, "passkey.added")} | {
        e.action for e in await events(ctx, "passkey.removed")
    }
    assert actions == {"passkey.added", "passkey.removed"}


async def test_adding_a_passkey_with_an_old_sign_in_goes_to_reauth_first(
    browser: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)

    answer = await options(browser, "/account/passkeys", "/account/passkeys/options")

    assert answer == {"redirect": "/account/reauth?next=%2Faccount%2Fpasskeys"}


async def test_sign_in_with_a_passkey_without_a_password(
    browser: httpx.AsyncClient, app: Any, ctx: AppContext
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    authenticator = SoftAuthenticator()
    assert (await add_passkey(browser, authenticator)).status_code == 303
    transport = httpx.ASGITransport(app=app, client=("198.51.100.21", 52001))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://atrium.test", headers={"User-Agent": "other"}
    ) as fresh:
        answer = await options(fresh, "/login", "/login/passkey/options")
        credential = authenticator.get(answer["public_key"])
        signed = await post_form(
            fresh,
            "/login",
            "/login/passkey",
            {
                "challenge_id": answer["challenge_id"],
                "credential": json.dumps(credential),
                "next": "/account/passkeys",
            },
        )

        assert signed.status_code == 303, signed.text
        assert signed.headers["location"] == "/account/passkeys"
        assert fresh.cookies.get(SESSION_COOKIE)
        assert (await fresh.get("/account/passkeys")).status_code == 200


async def test_a_wrong_passkey_answer_shows_the_login_form_again(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    answer = await options(browser, "/login", "/login/passkey/options")
    credential = SoftAuthenticator().get(answer["public_key"])  # not registered anywhere

    response = await post_form(
        browser,
        "/login",
        "/login/passkey",
        {"challenge_id": answer["challenge_id"], "credential": json.dumps(credential)},
    )

    assert response.status_code == 401
    assert "The passkey could not be verified." in response.text
    assert 'id="passkey-login"' in response.text


async def test_the_passkey_as_second_step_after_the_password(
    browser: httpx.AsyncClient, app: Any, ctx: AppContext
) -> None:
    await signed_in(browser, ctx, "ada@example.com")
    authenticator = SoftAuthenticator()
    assert (await add_passkey(browser, authenticator)).status_code == 303
    transport = httpx.ASGITransport(app=app, client=("198.51.100.22", 52002))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://atrium.test", headers={"User-Agent": "other"}
    ) as fresh:
        first = await sign_in(fresh, "ada@example.com")
        assert first.headers["location"].startswith("/login/mfa")
        page = await fresh.get("/login/mfa")
        assert "Use a passkey" in page.text
        assert 'id="code"' not in page.text  # no authenticator app on this account
        answer = await options(fresh, "/login/mfa", "/login/mfa/passkey/options")
        credential = authenticator.get(answer["public_key"])
        done = await post_form(
            fresh, "/login/mfa", "/login/mfa", {"credential": json.dumps(credential)}
        )

        assert done.status_code == 303, done.text
        assert fresh.cookies.get(SESSION_COOKIE)
        assert (await fresh.get("/account")).status_code == 200
    logins = await events(ctx, "auth.login_succeeded")
    assert {"method": "webauthn"} in [e.details for e in logins]


async def test_passkey_options_need_the_csrf_token(browser: httpx.AsyncClient) -> None:
    await browser.get("/login")

    response = await browser.post("/login/passkey/options", data={})

    assert response.status_code == 403
