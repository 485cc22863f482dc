"""The authorization code flow against the fake provider: happy paths and every check
of the callback (state, browser binding, iss, ID token)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.models import AuditEvent, OutboxMessage, User, UserIdentity
from tests.social.conftest import APP_REDIRECT, at_provider, sign_in, start
from tests.social.fake_idp import FakeIdP


async def _identities(ctx: AppContext) -> list[UserIdentity]:
    async with ctx.sessionmaker() as db:
        return list((await db.scalars(select(UserIdentity))).all())


async def _user(ctx: AppContext, email: str) -> User | None:
    async with ctx.sessionmaker() as db:
        return await db.scalar(select(User).where(User.email_normalized == email))


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_first_sign_in_creates_a_verified_account_and_signs_the_browser_in(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    response = await sign_in(browser, redirect_to="/account")

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    assert "__Host-atrium_session" in response.cookies
    user = await _user(ctx, "ada@example.com")
    assert user is not None
    assert user.email_verified_at is not None
    assert user.full_name == "Ada Lovelace"
    [identity] = await _identities(ctx)
    assert (identity.issuer, identity.subject, identity.user_id) == (
        idp.issuer,
        "fake-sub-1",
        user.id,
    )
    me = await browser.get("/account")
    assert me.status_code == 200


async def test_authorization_request_carries_state_nonce_and_pkce_s256(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    query = _query(await start(browser, redirect_to="/account"))

    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["redirect_uri"] == "https://atrium.test/api/v1/auth/oauth/fake/callback"


async def test_second_sign_in_uses_the_linked_identity(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    assert (await sign_in(browser)).status_code == 303
    idp.claims = {"email": "changed@example.com"}  # the email no longer matters

    response = await sign_in(browser)

    assert response.status_code == 303
    assert len(await _identities(ctx)) == 1
    assert await _user(ctx, "changed@example.com") is None


async def test_replayed_state_is_refused(browser: httpx.AsyncClient, idp: FakeIdP) -> None:
    back = await at_provider(await start(browser))
    assert (await browser.get(back)).status_code == 303

    again = await browser.get(back)

    assert again.status_code == 400
    assert again.json()["code"] == "invalid_oauth_state"


async def test_state_from_another_browser_is_refused(
    browser: httpx.AsyncClient, app: Any, ctx: AppContext, idp: FakeIdP
) -> None:
    # The attacker starts a flow in their own browser and sends the victim the callback.
    back = await at_provider(await start(browser))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.66", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://atrium.test") as victim:
        response = await victim.get(back)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_oauth_state"
    assert "__Host-atrium_session" not in response.cookies
    assert await _identities(ctx) == []


async def test_unknown_state_is_refused(browser: httpx.AsyncClient, idp: FakeIdP) -> None:
    await start(browser)
    response = await browser.get(
        "/api/v1/auth/oauth/fake/callback",
        params={"state": "forged", "code": "x", "iss": idp.issuer},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_oauth_state"


async def test_expired_state_is_refused(
    browser: httpx.AsyncClient, clock: Any, idp: FakeIdP
) -> None:
    back = await at_provider(await start(browser))
    clock.advance(seconds=601)

    response = await browser.get(back)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_oauth_state"


async def test_mix_up_response_from_another_issuer_is_refused(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.response_iss = "https://evil.example"

    response = await sign_in(browser)

    assert response.status_code == 400
    assert response.json()["code"] == "issuer_mismatch"
    assert await _identities(ctx) == []


async def test_missing_iss_is_refused_when_the_provider_announces_it(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    idp.response_iss = None

    response = await sign_in(browser)

    assert response.status_code == 400
    assert response.json()["code"] == "issuer_mismatch"


async def test_missing_iss_is_accepted_from_a_provider_that_never_sends_it(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    idp.response_iss = None
    idp.iss_supported = False

    assert (await sign_in(browser)).status_code == 303


@pytest.mark.parametrize(
    ("claims", "case"),
    [
        ({"nonce": "another-nonce"}, "wrong nonce"),
        ({"nonce": None}, "missing nonce"),
        ({"iss": "https://evil.example"}, "wrong issuer"),
        ({"aud": "someone-else"}, "wrong audience"),
        ({"aud": ["atrium-client", "someone-else"]}, "several audiences without azp"),
        ({"azp": "someone-else"}, "azp of another client"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "expired"),
        ({"iat": 4_000_000_000, "exp": 4_000_000_300}, "issued in the future"),
    ],
)
async def test_id_token_with_bad_claims_is_refused(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP, claims: dict[str, Any], case: str
) -> None:
    idp.claims = claims

    response = await sign_in(browser)

    assert response.status_code == 401, case
    assert response.json()["code"] == "invalid_id_token", case
    assert await _identities(ctx) == [], case
    assert "__Host-atrium_session" not in response.cookies


async def test_several_audiences_with_azp_of_this_client_are_accepted(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    idp.claims = {"aud": ["atrium-client", "api"], "azp": "atrium-client"}

    assert (await sign_in(browser)).status_code == 303


@pytest.mark.parametrize("tamper", ["none", "hs256"])
async def test_unsigned_or_hmac_with_the_public_key_id_token_is_refused(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP, tamper: str
) -> None:
    idp.tamper = tamper

    response = await sign_in(browser)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_id_token"
    assert await _identities(ctx) == []


async def test_id_token_signed_by_a_key_the_provider_does_not_publish_is_refused(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    idp.published = [idp.keys[0]]
    idp.rotate()  # signs with a new key, still publishes only the old one

    response = await sign_in(browser)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_id_token"


async def test_provider_key_rotation_is_followed_without_restart(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    assert (await sign_in(browser)).status_code == 303
    fetches = idp.jwks_fetches
    assert (await sign_in(browser)).status_code == 303
    assert idp.jwks_fetches == fetches  # cached

    idp.rotate()
    response = await sign_in(browser)

    assert response.status_code == 303
    assert idp.jwks_fetches == fetches + 1


async def test_app_redirect_gets_a_login_code_exchanged_once_with_its_verifier(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, idp: FakeIdP
) -> None:
    verifier = "v" * 43 + "-app-verifier"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    response = await sign_in(
        browser,
        redirect_to=APP_REDIRECT,
        code_challenge=challenge.decode(),
        code_challenge_method="S256",
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(APP_REDIRECT + "?login_code=")
    code = _query(location)["login_code"]

    wrong = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": "w" * 43}
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_login_code"

    response = await sign_in(browser, redirect_to=APP_REDIRECT, code_challenge=challenge.decode())
    code = _query(response.headers["location"])["login_code"]
    tokens = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": verifier}
    )
    assert tokens.status_code == 200, tokens.text
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.json()["email"] == "ada@example.com"
    replay = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": verifier}
    )
    assert replay.status_code == 400


async def test_login_code_expires_after_60_seconds(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, clock: Any, idp: FakeIdP
) -> None:
    verifier = "x" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    response = await sign_in(browser, redirect_to=APP_REDIRECT, code_challenge=challenge.decode())
    code = _query(response.headers["location"])["login_code"]
    clock.advance(seconds=61)

    late = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": verifier}
    )

    assert late.status_code == 400


@pytest.mark.parametrize(
    "target", ["https://evil.example/cb", "//evil.example/x", "https://app.example/callback/x"]
)
async def test_redirect_to_outside_the_allow_list_is_refused(
    browser: httpx.AsyncClient, idp: FakeIdP, target: str
) -> None:
    response = await browser.get(
        "/api/v1/auth/oauth/fake/authorize",
        params={"redirect_to": target, "code_challenge": "a" * 43},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_redirect_to"


async def test_app_redirect_without_pkce_challenge_is_refused(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    response = await browser.get(
        "/api/v1/auth/oauth/fake/authorize", params={"redirect_to": APP_REDIRECT}
    )
    assert response.status_code == 400


async def test_sign_in_is_audited(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    await sign_in(browser)
    async with ctx.sessionmaker() as db:
        actions = (await db.scalars(select(AuditEvent.action))).all()
        mails = await db.scalar(select(func.count()).select_from(OutboxMessage))
    assert "social.identity_linked" in actions
    assert "auth.login_succeeded" in actions
    assert "user.registered" in actions
    assert mails == 0  # a new, verified account: nothing to verify, nobody to warn


async def test_discovery_document_of_another_issuer_is_refused(
    browser: httpx.AsyncClient, idp: FakeIdP
) -> None:
    idp.announced_issuer = "https://evil.example"

    response = await browser.get("/api/v1/auth/oauth/fake/authorize")

    assert response.status_code == 502
    assert response.json()["code"] == "provider_unavailable"
