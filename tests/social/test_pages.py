"""Social login in the hosted pages: the login buttons, the account's sign-in methods
(link while signed in, unlink), and a failed callback shown to a browser as a page."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuthSession, OAuthTicket
from tests.factories import PASSWORD
from tests.social.conftest import at_provider, sign_in, start
from tests.social.fake_idp import FakeIdP
from tests.social.helpers import identities, local_account
from tests.ui.conftest import csrf_of
from tests.ui.conftest import sign_in as password_sign_in


async def test_login_page_offers_each_enabled_provider(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    page = await browser.get("/login", params={"next": "/account/preferences"})

    assert page.status_code == 200
    assert "Continue with GitHub" in page.text
    assert (
        'href="/api/v1/auth/oauth/fake/authorize?redirect_to=%2Faccount%2Fpreferences"' in page.text
    )


async def test_login_button_of_a_foreign_next_returns_to_the_default_page(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    page = await browser.get("/login", params={"next": "https://evil.example/"})

    assert "evil.example" not in page.text.split("social-login")[1]
    assert "redirect_to=%2Faccount" in page.text


async def test_signed_in_owner_links_and_removes_a_provider_on_the_connections_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    user_id = await local_account(client, ctx, "grace@example.com", verified=True)
    await password_sign_in(browser, "grace@example.com")
    page = await browser.get("/account/connections")
    assert page.status_code == 200
    assert "No linked accounts." in page.text

    start = await browser.post(
        "/account/connections/other/link", data={"csrf_token": csrf_of(page.text)}
    )
    assert start.status_code == 303
    back = await browser.get(await at_provider(start.headers["location"]))
    assert back.headers["location"] == "/account/connections?done=identity_linked"
    [identity] = await identities(ctx)
    assert identity.user_id == user_id
    page = await browser.get("/account/connections?done=identity_linked")
    assert "The account was linked." in page.text
    assert "Untrusted" in page.text

    removed = await browser.post(
        f"/account/connections/{identity.id}/unlink", data={"csrf_token": csrf_of(page.text)}
    )
    assert removed.status_code == 303
    assert await identities(ctx) == []


async def test_link_without_the_csrf_token_is_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "grace@example.com", verified=True)
    await password_sign_in(browser, "grace@example.com")

    response = await browser.post("/account/connections/other/link", data={})

    assert response.status_code == 403


async def test_removing_the_only_sign_in_method_shows_why_not(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    assert (await sign_in(browser)).status_code == 303  # a new account without password
    [identity] = await identities(ctx)
    page = await browser.get("/account/connections")
    assert "This account has no password" in page.text

    refused = await browser.post(
        f"/account/connections/{identity.id}/unlink", data={"csrf_token": csrf_of(page.text)}
    )

    assert refused.status_code == 409
    assert "only way to sign in" in refused.text
    assert len(await identities(ctx)) == 1


async def test_failed_callback_is_a_page_for_a_browser(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    idp.claims = {"nonce": "replayed"}
    back = await at_provider(
        (await browser.get("/api/v1/auth/oauth/fake/authorize")).headers["location"]
    )

    response = await browser.get(back, headers={"Accept": "text/html"})

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "could not be verified" in response.text


async def test_link_page_without_a_pending_link_says_it_expired(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    response = await browser.get("/login/link")

    assert response.status_code == 400
    assert "expired" in response.text


async def test_linking_and_removing_on_the_connections_page_need_a_recent_authentication(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    idp: FakeIdP,
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    await sign_in(browser)  # linked on the trusted verified email; the browser signed in
    [identity] = await identities(ctx)
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)
    page = await browser.get("/account/connections")
    token = csrf_of(page.text)

    link = await browser.post("/account/connections/other/link", data={"csrf_token": token})
    unlink = await browser.post(
        f"/account/connections/{identity.id}/unlink", data={"csrf_token": token}
    )

    back = "/account/reauth?next=%2Faccount%2Fconnections"
    assert (link.status_code, link.headers["location"]) == (303, back)
    assert (unlink.status_code, unlink.headers["location"]) == (303, back)
    assert len(await identities(ctx)) == 1
    assert await _state_tickets(ctx) == 1  # only the sign-in's own, used: no flow started

    reauth = await browser.get(back)
    assert reauth.status_code == 200
    confirmed = await browser.post(
        "/account/reauth",
        data={
            "password": PASSWORD,
            "next": "/account/connections",
            "csrf_token": csrf_of(reauth.text),
        },
    )
    assert confirmed.headers["location"] == "/account/connections?done=reauthenticated"
    page = await browser.get(confirmed.headers["location"])
    assert "Confirmed. You can make the change now." in page.text

    link = await browser.post(
        "/account/connections/other/link", data={"csrf_token": csrf_of(page.text)}
    )
    assert link.status_code == 303
    assert link.headers["location"].startswith(idp.issuer)
    unlink = await browser.post(
        f"/account/connections/{identity.id}/unlink", data={"csrf_token": csrf_of(page.text)}
    )
    assert unlink.headers["location"] == "/account/connections?done=identity_unlinked"
    assert await identities(ctx) == []


async def test_link_page_of_a_signed_in_owner_without_a_recent_sign_in_asks_the_password(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    idp: FakeIdP,
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    await password_sign_in(browser, "ada@example.com")
    await _age_sessions(ctx, ctx.settings.auth.step_up_max_age_seconds + 1)
    response = await sign_in(browser, "other")  # untrusted: the link must be confirmed
    assert response.headers["location"] == "/login/link"

    page = await browser.get("/login/link")
    assert 'name="password"' in page.text
    refused = await browser.post("/login/link", data={"csrf_token": csrf_of(page.text)})

    assert refused.status_code == 401
    assert await identities(ctx) == []


async def _age_sessions(ctx: AppContext, seconds: int) -> None:
    """Move the authentication time of every session back (the provider's ID tokens
    follow the real clock, so the app's clock stays where it is)."""
    async with ctx.sessionmaker() as db:
        for session in await db.scalars(select(AuthSession)):
            session.auth_time -= timedelta(seconds=seconds)
        await db.commit()


async def _state_tickets(ctx: AppContext) -> int:
    async with ctx.sessionmaker() as db:
        query = select(func.count()).select_from(OAuthTicket).where(OAuthTicket.kind == "state")
        return int(await db.scalar(query) or 0)


async def test_a_sign_in_through_a_provider_ends_the_browsers_earlier_session(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    user_id = await local_account(client, ctx, "ada@example.com", verified=True)
    await password_sign_in(browser, "ada@example.com")
    [earlier] = await _live_sessions(ctx)

    response = await sign_in(browser)  # the same account, through its provider

    assert response.status_code == 303
    [now_live] = await _live_sessions(ctx)
    assert now_live.id != earlier.id
    assert now_live.user_id == user_id
    assert now_live.amr == ["fed"]


async def test_an_account_without_a_password_confirms_it_is_you_through_its_provider(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    assert (await sign_in(browser)).status_code == 303  # a new account without password
    await _age_sessions(ctx, ctx.settings.auth.step_up_max_age_seconds + 1)
    page = await browser.get("/account/connections")
    refused = await browser.post(
        "/account/connections/other/link", data={"csrf_token": csrf_of(page.text)}
    )
    assert refused.headers["location"] == "/account/reauth?next=%2Faccount%2Fconnections"

    reauth = await browser.get(refused.headers["location"])

    assert reauth.status_code == 200
    assert 'name="password"' not in reauth.text
    again = '/api/v1/auth/oauth/fake/authorize?redirect_to=%2Faccount%2Fconnections"'
    assert again in reauth.text
    assert "/api/v1/auth/oauth/other/authorize" not in reauth.text  # not linked
    back = await browser.get(
        await at_provider(await start(browser, "fake", redirect_to="/account/connections"))
    )
    assert back.headers["location"] == "/account/connections"
    assert len(await _live_sessions(ctx)) == 1
    page = await browser.get("/account/connections")
    link = await browser.post(
        "/account/connections/other/link", data={"csrf_token": csrf_of(page.text)}
    )
    assert link.headers["location"].startswith(idp.issuer)


async def _live_sessions(ctx: AppContext) -> list[AuthSession]:
    async with ctx.sessionmaker() as db:
        query = select(AuthSession).where(AuthSession.revoked_at.is_(None))
        return list(await db.scalars(query))
