"""The account's API keys page: create with scopes (shown once, never in a URL), use, revoke;
the API's rules (scopes the owner holds) shown on the form."""

from __future__ import annotations

import re

import httpx

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import PASSWORD, register
from tests.ui.conftest import csrf_of, post_form, sign_in

KEY = re.compile(r'value="(atr_pat_[0-9A-Za-z]+)"')


async def test_create_use_and_revoke_a_key_from_the_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(browser, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    page = await browser.get("/account/api-keys")
    assert page.status_code == 200
    assert "No API keys yet." in page.text

    created = await post_form(
        browser,
        "/account/api-keys",
        "/account/api-keys",
        {"name": "CI deploy", "expires_in_days": "30"},
    )
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    match = KEY.search(created.text)
    assert match, created.text
    key = match.group(1)
    assert "CI deploy" in created.text

    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "ada@example.com"

    # Listed afterwards by its prefix only: the key itself is never shown again.
    listed = await browser.get("/account/api-keys")
    assert key not in listed.text
    assert key[:12] in listed.text
    key_id = re.search(r'action="/account/api-keys/([0-9a-f-]{36})/revoke"', listed.text)
    assert key_id

    revoked = await browser.post(
        f"/account/api-keys/{key_id.group(1)}/revoke", data={"csrf_token": csrf_of(listed.text)}
    )
    assert revoked.status_code == 303
    assert revoked.headers["location"].endswith("/account/api-keys?done=api_key_revoked")
    refused = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401
    assert "No API keys yet." in (await browser.get("/account/api-keys")).text


async def test_a_scope_the_owner_does_not_hold_is_refused_on_the_form(
    browser: httpx.AsyncClient,
) -> None:
    await register(browser, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    page = await browser.get("/account/api-keys")
    # A plain user holds no administrative permission: none is offered ...
    assert 'name="scopes" value="users:delete"' not in page.text
    # ... and one sent anyway is refused with the form shown again, nothing created.
    refused = await browser.post(
        "/account/api-keys",
        data={"name": "sneaky", "scopes": "users:delete", "csrf_token": csrf_of(page.text)},
    )
    assert refused.status_code == 403, refused.text
    assert "New key" in refused.text
    assert "atr_pat_" not in refused.text
    assert "No API keys yet." in (await browser.get("/account/api-keys")).text


async def test_creating_a_key_needs_the_csrf_token(browser: httpx.AsyncClient) -> None:
    await register(browser, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    refused = await browser.post("/account/api-keys", data={"name": "no token"})
    assert refused.status_code == 403
    assert "atr_pat_" not in refused.text


async def test_a_stale_session_confirms_it_is_you_before_creating_a_key(
    browser: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    """The API's step-up rule applies to the page: an old sign-in re-authenticates first."""
    await register(browser, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)
    asked = await post_form(
        browser, "/account/api-keys", "/account/api-keys", {"name": "CI", "expires_in_days": "30"}
    )
    assert asked.status_code == 303
    assert asked.headers["location"] == "/account/reauth?next=%2Faccount%2Fapi-keys"
    assert "No API keys yet." in (await browser.get("/account/api-keys")).text
    back = await post_form(
        browser,
        asked.headers["location"],
        "/account/reauth",
        {"password": PASSWORD, "next": "/account/api-keys"},
    )
    assert back.headers["location"] == "/account/api-keys?done=reauthenticated"
    created = await post_form(
        browser, "/account/api-keys", "/account/api-keys", {"name": "CI", "expires_in_days": "30"}
    )
    assert created.status_code == 200
    assert KEY.search(created.text)
