"""GitHub as a provider, against a fake of its token endpoint and REST API: the identity
is the numeric user id, and only the primary address counts, with its verified flag."""

from __future__ import annotations

import httpx

from atrium.context import AppContext
from tests.social.conftest import sign_in
from tests.social.fake_idp import FakeIdP
from tests.social.helpers import identities, local_account, mails, user_by_email


async def test_github_sign_in_creates_an_account_from_the_primary_verified_email(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.github_emails = [
        {"email": "old@example.com", "primary": False, "verified": True},
        {"email": "octo@example.com", "primary": True, "verified": True},
    ]

    response = await sign_in(browser, "gh")

    assert response.status_code == 303, response.text
    assert "__Host-atrium_session" in response.cookies
    user = await user_by_email(ctx, "octo@example.com")
    assert user is not None
    assert user.email_verified_at is not None
    assert user.full_name == "Octo Cat"
    [identity] = await identities(ctx)
    assert identity.subject == "4242"
    assert identity.provider == "gh"
    assert identity.issuer == "https://github.com"


async def test_a_verified_secondary_email_does_not_link_an_account(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "victim@example.com", verified=True)
    idp.github_emails = [
        {"email": "octo@example.com", "primary": True, "verified": True},
        {"email": "victim@example.com", "primary": False, "verified": True},
    ]

    await sign_in(browser, "gh")

    [identity] = await identities(ctx)
    victim = await user_by_email(ctx, "victim@example.com")
    assert victim is not None
    assert identity.user_id != victim.id


async def test_an_unverified_primary_email_goes_to_the_link_confirmation(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "octo@example.com", verified=True)
    idp.github_emails = [{"email": "octo@example.com", "primary": True, "verified": False}]

    response = await sign_in(browser, "gh")

    assert response.headers["location"] == "/login/link"
    assert await identities(ctx) == []
    assert await mails(ctx, "identity_linked") == []


async def test_a_verified_primary_email_links_a_verified_account(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    user_id = await local_account(client, ctx, "octo@example.com", verified=True)

    response = await sign_in(browser, "gh")

    assert response.status_code == 303
    [identity] = await identities(ctx)
    assert identity.user_id == user_id


async def test_github_account_without_a_primary_email_is_refused(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.github_emails = [{"email": "octo@example.com", "primary": False, "verified": True}]

    response = await sign_in(browser, "gh")

    assert response.status_code == 422
    assert response.json()["code"] == "provider_email_missing"


async def test_github_login_change_keeps_the_identity(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await sign_in(browser, "gh")
    idp.github_user = {"id": 4242, "login": "renamed", "name": None}

    response = await sign_in(browser, "gh")

    assert response.status_code == 303
    assert len(await identities(ctx)) == 1


async def test_github_response_with_a_foreign_iss_is_refused(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    from tests.social.conftest import at_provider, start

    back = await at_provider(await start(browser, "gh"))

    response = await browser.get(back + "&iss=https%3A%2F%2Fevil.example")

    assert response.status_code == 400
    assert response.json()["code"] == "issuer_mismatch"
    assert await identities(ctx) == []
