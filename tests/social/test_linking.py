"""Atrium's linking rules (docs/social-login.md): an identity is linked to an existing
account automatically only when the provider is trusted, says the email is verified and
the local email is verified; otherwise the owner must confirm with the password."""

from __future__ import annotations

from typing import Any

import httpx

from atrium.context import AppContext
from tests.social.conftest import at_provider, sign_in
from tests.social.fake_idp import FakeIdP
from tests.social.helpers import actions, identities, local_account, mails, user_by_email


async def test_trusted_verified_email_links_a_verified_account_and_emails_its_owner(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    user_id = await local_account(client, ctx, "ada@example.com", verified=True)

    response = await sign_in(browser)

    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    [identity] = await identities(ctx)
    assert identity.user_id == user_id
    [notice] = await mails(ctx, "identity_linked")
    assert notice.to_address == "ada@example.com"
    assert "social.identity_linked" in await actions(ctx)


async def test_unverified_local_email_is_never_linked_automatically(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=False)

    response = await sign_in(browser)

    assert response.status_code == 303
    assert response.headers["location"] == "/login/link"
    assert "__Host-atrium_link_pending" in response.cookies
    assert "__Host-atrium_session" not in response.cookies
    assert await identities(ctx) == []


async def test_provider_email_marked_unverified_is_never_linked_automatically(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    idp.claims = {"email_verified": False}

    response = await sign_in(browser)

    assert response.headers["location"] == "/login/link"
    assert await identities(ctx) == []


async def test_missing_email_verified_claim_counts_as_unverified(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    idp.claims = {"email_verified": None}

    response = await sign_in(browser)

    assert response.headers["location"] == "/login/link"
    assert await identities(ctx) == []


async def test_email_verified_as_a_string_counts_as_unverified(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    idp.claims = {"email_verified": "true"}

    response = await sign_in(browser)

    assert response.headers["location"] == "/login/link"


async def test_untrusted_provider_with_a_matching_verified_email_does_not_link(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    # The provider says "verified", but it is not trusted for it (it could say so of any
    # address: goauthentik/authentik#16205).
    await local_account(client, ctx, "ada@example.com", verified=True)

    response = await sign_in(browser, "other")

    assert response.headers["location"] == "/login/link"
    assert "__Host-atrium_session" not in response.cookies
    assert await identities(ctx) == []
    assert await mails(ctx, "identity_linked") == []


async def test_untrusted_provider_creates_an_unverified_account_and_sends_verification(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    response = await sign_in(browser, "other")

    assert response.status_code == 303
    user = await user_by_email(ctx, "ada@example.com")
    assert user is not None
    assert user.email_verified_at is None
    assert len(await mails(ctx, "verify_email")) == 1


async def test_trusted_provider_with_unverified_email_creates_an_unverified_account(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.claims = {"email_verified": False}

    await sign_in(browser)

    user = await user_by_email(ctx, "ada@example.com")
    assert user is not None
    assert user.email_verified_at is None
    assert len(await mails(ctx, "verify_email")) == 1


async def test_identity_without_email_is_refused_for_a_new_account(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.claims = {"email": None}
    idp.userinfo_email = None

    response = await sign_in(browser)

    assert response.status_code == 422
    assert response.json()["code"] == "provider_email_missing"


async def test_suspended_account_cannot_sign_in_through_its_identity(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await sign_in(browser)
    user = await user_by_email(ctx, "ada@example.com")
    assert user is not None
    async with ctx.sessionmaker() as db:
        row = await db.merge(user)
        row.status = "suspended"
        await db.commit()

    response = await sign_in(browser)

    assert response.status_code == 403
    assert response.json()["code"] == "account_suspended"


async def _bearer(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    from tests.factories import login

    tokens = await login(client, email)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_signed_in_owner_links_a_provider_with_another_email(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    user_id = await local_account(client, ctx, "grace@example.com", verified=True)
    headers = await _bearer(client, "grace@example.com")

    start = await browser.post(
        "/api/v1/users/me/identities/other",
        json={"redirect_to": "/account/security"},
        headers=headers,
    )
    assert start.status_code == 200, start.text
    back = await at_provider(start.json()["authorization_url"])
    response = await browser.get(back)

    assert response.status_code == 303
    assert response.headers["location"] == "/account/security"
    [identity] = await identities(ctx)
    assert identity.user_id == user_id
    listed = await client.get("/api/v1/users/me/identities", headers=headers)
    assert listed.status_code == 200
    assert [i["provider"] for i in listed.json()["items"]] == ["other"]
    assert listed.json()["has_password"] is True
    assert len(await mails(ctx, "identity_linked")) == 1


async def test_linking_an_identity_held_by_another_account_is_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await sign_in(browser)  # ada@example.com holds fake-sub-1
    await local_account(client, ctx, "grace@example.com", verified=True)
    headers = await _bearer(client, "grace@example.com")

    start = await browser.post("/api/v1/users/me/identities/fake", headers=headers)
    response = await browser.get(await at_provider(start.json()["authorization_url"]))

    assert response.status_code == 409
    assert response.json()["code"] == "identity_linked_elsewhere"


async def test_unlink_keeps_a_password_account_and_is_audited(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    await sign_in(browser)  # auto-linked
    headers = await _bearer(client, "ada@example.com")
    [identity] = await identities(ctx)

    response = await client.delete(f"/api/v1/users/me/identities/{identity.id}", headers=headers)

    assert response.status_code == 204
    assert await identities(ctx) == []
    assert "social.identity_unlinked" in await actions(ctx)


async def test_unlinking_the_last_login_method_is_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, app: Any, idp: FakeIdP
) -> None:
    verifier = "q" * 43
    import base64
    import hashlib

    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    response = await sign_in(
        browser, redirect_to="https://app.example/callback", code_challenge=challenge.decode()
    )
    code = response.headers["location"].split("login_code=")[1]
    tokens = (
        await client.post(
            "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": verifier}
        )
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    [identity] = await identities(ctx)

    refused = await client.delete(f"/api/v1/users/me/identities/{identity.id}", headers=headers)
    other = await client.delete(
        "/api/v1/users/me/identities/00000000-0000-4000-8000-00000000abcd", headers=headers
    )

    assert refused.status_code == 409
    assert refused.json()["code"] == "last_login_method"
    assert other.status_code == 404
    assert len(await identities(ctx)) == 1


async def test_social_only_account_cannot_sign_in_with_a_password(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, idp: FakeIdP
) -> None:
    await sign_in(browser)

    for password in ("", "!unusable", "x" * 12):
        response = await client.post(
            "/api/v1/auth/login", data={"username": "ada@example.com", "password": password}
        )
        assert response.status_code in (401, 422), password


async def test_email_from_userinfo_is_used_when_the_id_token_has_none(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.claims = {"email": None}
    idp.userinfo_email = "from-userinfo@example.com"

    assert (await sign_in(browser)).status_code == 303
    assert await user_by_email(ctx, "from-userinfo@example.com") is not None


async def test_userinfo_about_another_subject_is_ignored(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.claims = {"email": None}
    idp.userinfo_sub = "someone-else"

    response = await sign_in(browser)

    assert response.status_code == 422
    assert await identities(ctx) == []


async def test_linking_and_unlinking_need_a_recent_authentication(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: Any,
    idp: FakeIdP,
) -> None:
    await local_account(client, ctx, "ada@example.com", verified=True)
    await sign_in(browser)  # linked automatically
    headers = await _bearer(client, "ada@example.com")
    [identity] = await identities(ctx)
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)

    start = await browser.post("/api/v1/users/me/identities/other", headers=headers)
    remove = await client.delete(f"/api/v1/users/me/identities/{identity.id}", headers=headers)

    assert start.status_code == 401
    assert start.json()["code"] == "step_up_required"
    assert remove.status_code == 401
    assert len(await identities(ctx)) == 1
    assert (await client.get("/api/v1/users/me/identities", headers=headers)).status_code == 200
