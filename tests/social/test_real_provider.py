"""The whole authorization code flow against a real OpenID Provider (npm
``oidc-provider``, a certified implementation): discovery, PKCE, nonce, RFC 9207 ``iss``,
the signed ID token, and the linking rules on top."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest

from atrium.config import IdentityProviderSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import PASSWORD
from tests.mfa.helpers import VERIFY, mfa_account, totp_code
from tests.social.conftest import APP_REDIRECT, BASE, start
from tests.social.helpers import identities, local_account, mails, user_by_email
from tests.social.real_idp import CLIENT_ID, CLIENT_SECRET, oidc_provider, through_provider
from tests.ui.conftest import csrf_of

CALLBACK = f"{BASE}/api/v1/auth/oauth/idp/callback"


@pytest.fixture(scope="session")
def real_issuer() -> Iterator[str]:
    with oidc_provider([CALLBACK]) as issuer:
        yield issuer


@pytest.fixture
def settings(settings: Settings, real_issuer: str) -> Settings:
    provider = IdentityProviderSettings(
        id="idp",
        display_name="Test IdP",
        issuer=real_issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
        trust_email_verified=True,
    )
    social = settings.social.model_copy(update={"providers": [provider]})
    return settings.model_copy(update={"social": social})


async def _sign_in(browser: httpx.AsyncClient, login: str) -> httpx.Response:
    url = await start(browser, "idp", redirect_to="/account")
    back = await through_provider(url, login, BASE)
    return await browser.get(back)


async def test_real_provider_signs_a_new_account_in(
    browser: httpx.AsyncClient, ctx: AppContext, real_issuer: str
) -> None:
    response = await _sign_in(browser, "ada@example.com")

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    assert (await browser.get("/account")).status_code == 200
    user = await user_by_email(ctx, "ada@example.com")
    assert user is not None
    assert user.email_verified_at is not None
    [identity] = await identities(ctx)
    assert identity.issuer == real_issuer
    assert identity.subject == "ada@example.com"


async def test_real_provider_callback_cannot_be_replayed(
    browser: httpx.AsyncClient, real_issuer: str
) -> None:
    url = await start(browser, "idp", redirect_to="/account")
    back = await through_provider(url, "bob@example.com", BASE)
    assert (await browser.get(back)).status_code == 303

    replay = await browser.get(back)

    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_oauth_state"


async def test_real_provider_unverified_email_links_only_after_the_password(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, real_issuer: str
) -> None:
    user_id = await local_account(client, ctx, "grace@example.com", verified=True)

    response = await _sign_in(browser, "unverified.grace@example.com")

    assert response.headers["location"] == "/login/link"
    assert await identities(ctx) == []
    page = await browser.get("/login/link")
    assert page.status_code == 200
    assert "grace@example.com" in page.text
    wrong = await browser.post(
        "/login/link", data={"password": "wrong password!", "csrf_token": csrf_of(page.text)}
    )
    assert wrong.status_code == 401
    assert await identities(ctx) == []

    confirmed = await browser.post(
        "/login/link", data={"password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )

    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"] == "/account"
    [identity] = await identities(ctx)
    assert identity.user_id == user_id
    assert len(await mails(ctx, "identity_linked")) == 1
    again = await _sign_in(browser, "unverified.grace@example.com")
    assert again.headers["location"] == "/account"
    assert "__Host-atrium_session" in again.cookies


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _second_step(
    browser: httpx.AsyncClient, location: str, code: str, next_path: str
) -> httpx.Response:
    page = await browser.get(location)
    assert page.status_code == 200, page.text
    return await browser.post(
        "/login/mfa", data={"code": code, "next": next_path, "csrf_token": csrf_of(page.text)}
    )


async def test_real_provider_app_sign_in_of_an_mfa_account_answers_mfa_required(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    real_issuer: str,
) -> None:
    account = await mfa_account(client, ctx, clock, "mia@example.com")
    verifier = "v" * 43
    url = await start(browser, "idp", redirect_to=APP_REDIRECT, code_challenge=_challenge(verifier))
    back = await browser.get(await through_provider(url, "mia@example.com", BASE))
    assert back.headers["location"].startswith(f"{APP_REDIRECT}?login_code=")
    code = back.headers["location"].split("login_code=")[1]

    step = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": verifier}
    )

    assert step.status_code == 401, step.text
    assert step.json()["code"] == "mfa_required"
    assert "access_token" not in step.json()
    verified = await client.post(
        VERIFY,
        json={"mfa_token": step.json()["mfa_token"], "code": totp_code(account.secret, clock)},
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["acr"] == "aal2"
    assert set(verified.json()["amr"]) >= {"fed", "otp"}


async def test_real_provider_hosted_sign_in_of_an_mfa_account_goes_through_the_second_step(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    real_issuer: str,
) -> None:
    account = await mfa_account(client, ctx, clock, "mia@example.com")

    response = await _sign_in(browser, "mia@example.com")

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/login/mfa?next=%2Faccount"
    assert "__Host-atrium_session" not in browser.cookies
    assert (await browser.get("/account")).status_code == 303
    done = await _second_step(
        browser, response.headers["location"], totp_code(account.secret, clock), "/account"
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/account"
    assert (await browser.get("/account")).status_code == 200


async def test_real_provider_link_confirmation_of_an_mfa_account_needs_the_second_factor(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    clock: FrozenClock,
    real_issuer: str,
) -> None:
    account = await mfa_account(client, ctx, clock, "mia@example.com")
    response = await _sign_in(browser, "unverified.mia@example.com")
    assert response.headers["location"] == "/login/link"
    page = await browser.get("/login/link")

    first = await browser.post(
        "/login/link", data={"password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )

    assert first.status_code == 303, first.text
    assert first.headers["location"] == "/login/mfa?next=%2Flogin%2Flink"
    assert await identities(ctx) == []  # the password alone links nothing
    assert "__Host-atrium_session" not in browser.cookies
    done = await _second_step(
        browser, first.headers["location"], totp_code(account.secret, clock), "/login/link"
    )
    assert done.headers["location"] == "/login/link"
    assert await identities(ctx) == []
    confirm = await browser.get("/login/link")
    assert "You are signed in to the account mia@example.com" in confirm.text
    assert 'name="password"' not in confirm.text

    linked = await browser.post("/login/link", data={"csrf_token": csrf_of(confirm.text)})

    assert linked.status_code == 303, linked.text
    assert linked.headers["location"] == "/account"
    [identity] = await identities(ctx)
    assert str(identity.user_id) == account.id
    assert len(await mails(ctx, "identity_linked")) == 1
    assert (await browser.get("/login/link")).status_code == 400  # the ticket was used
