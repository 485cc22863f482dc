"""MFA still applies after a social sign-in: the provider's login is the first factor
(``amr: ["fed"]``) and an account with a second factor gets ``mfa_required``."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from atrium.config import Settings
from atrium.context import AppContext
from atrium.models import AuthSession
from tests.factories import grant_role, login
from tests.mfa.helpers import VERIFY, mfa_account, totp_code
from tests.social.conftest import APP_REDIRECT, sign_in
from tests.social.fake_idp import FakeIdP
from tests.social.helpers import local_account
from tests.ui.conftest import csrf_of

VERIFIER = "m" * 43


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Roles may require MFA (the built-in admin roles do), with a day of grace."""
    mfa = settings.mfa.model_copy(
        update={"role_requirement_enabled": True, "enrollment_grace_period_seconds": 86_400}
    )
    return settings.model_copy(update={"mfa": mfa})


def _challenge() -> str:
    digest = hashlib.sha256(VERIFIER.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_social_sign_in_of_an_mfa_account_asks_for_the_second_factor(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: Any, idp: FakeIdP
) -> None:
    account = await mfa_account(client, ctx, clock)
    response = await sign_in(browser, redirect_to=APP_REDIRECT, code_challenge=_challenge())
    code = response.headers["location"].split("login_code=")[1]

    step = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": VERIFIER}
    )

    assert step.status_code == 401, step.text
    assert step.json()["code"] == "mfa_required"
    verified = await client.post(
        VERIFY,
        json={"mfa_token": step.json()["mfa_token"], "code": totp_code(account.secret, clock)},
    )
    assert verified.status_code == 200, verified.text
    assert "fed" in verified.json()["amr"]


async def test_hosted_social_sign_in_of_an_mfa_account_continues_at_the_second_step(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: Any, idp: FakeIdP
) -> None:
    account = await mfa_account(client, ctx, clock)

    response = await sign_in(browser, redirect_to="/account/preferences")

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/login/mfa?next=%2Faccount%2Fpreferences"
    assert "__Host-atrium_session" not in response.cookies
    token = browser.cookies.get("__Host-atrium_mfa")
    assert token
    assert token not in response.headers["location"]
    assert (await browser.get("/account")).status_code == 303  # not signed in yet
    page = await browser.get(response.headers["location"])
    assert page.status_code == 200
    wrong = await browser.post(
        "/login/mfa",
        data={"code": "000000", "next": "/account/preferences", "csrf_token": csrf_of(page.text)},
    )
    assert wrong.status_code == 401
    assert "__Host-atrium_session" not in browser.cookies

    done = await browser.post(
        "/login/mfa",
        data={
            "code": totp_code(account.secret, clock),
            "next": "/account/preferences",
            "csrf_token": csrf_of(page.text),
        },
    )

    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/account/preferences"
    assert (await browser.get("/account/preferences")).status_code == 200
    [session] = await _live_sessions(ctx, account.id)
    assert session.aal == 2
    assert "fed" in session.amr
    assert "otp" in session.amr


async def test_hosted_social_sign_in_of_an_account_without_mfa_opens_the_session_at_once(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    user_id = await local_account(client, ctx, "ada@example.com", verified=True)

    response = await sign_in(browser)  # linked on the trusted verified email

    assert response.status_code == 303
    assert not response.headers["location"].startswith("/login/mfa")
    assert "__Host-atrium_mfa" not in browser.cookies
    [session] = await _live_sessions(ctx, str(user_id))
    assert (session.aal, session.amr) == (1, ["fed"])


async def test_mfa_required_by_role_marks_the_social_session_as_the_password_login_does(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    """A role requiring MFA, an account without a factor yet: the pair of a social
    sign-in carries ``mfa_enrol_by`` like the pair of a password login."""
    user_id = await local_account(client, ctx, "ada@example.com", verified=True)
    await grant_role(ctx, str(user_id), "admin")  # a built-in role requiring MFA
    password_pair = await login(client, "ada@example.com")

    response = await sign_in(browser, redirect_to=APP_REDIRECT, code_challenge=_challenge())
    code = response.headers["location"].split("login_code=")[1]
    social = await client.post(
        "/api/v1/auth/oauth/exchange", json={"login_code": code, "code_verifier": VERIFIER}
    )

    assert social.status_code == 200, social.text
    enrol_by = _claims(social.json())["mfa_enrol_by"]
    assert enrol_by == _claims(password_pair)["mfa_enrol_by"]
    assert enrol_by > ctx.clock.now().timestamp()
    assert _claims(social.json())["amr"] == ["fed"]


def _claims(pair: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(pair["access_token"], options={"verify_signature": False})
    return claims


async def _live_sessions(ctx: AppContext, user_id: str) -> list[AuthSession]:
    async with ctx.sessionmaker() as db:
        rows = await db.scalars(
            select(AuthSession).where(
                AuthSession.user_id == uuid.UUID(user_id),
                AuthSession.user_agent == "pytest-browser",
                AuthSession.revoked_at.is_(None),
            )
        )
        return list(rows)
