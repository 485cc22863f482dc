"""Fixtures of the social-login tests: the fake provider, the settings naming it, a
browser-like client (HTTPS base URL so ``__Host-`` cookies are kept)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from atrium.config import IdentityProviderSettings, Settings, SocialSettings
from atrium.core.outbound import http_client
from atrium.social import oidc
from tests.social.fake_idp import CLIENT_ID, CLIENT_SECRET, FakeIdP, Served

APP_REDIRECT = "https://app.example/callback"
BASE = "https://atrium.test"


@pytest.fixture(scope="session")
def fake_idp_server() -> Iterator[FakeIdP]:
    idp = FakeIdP()
    idp.reset()
    with Served(idp.app()) as served:
        idp.issuer = f"http://127.0.0.1:{served.port}"
        yield idp


@pytest.fixture
def idp(fake_idp_server: FakeIdP) -> FakeIdP:
    fake_idp_server.reset()
    oidc._documents.clear()
    return fake_idp_server


def fake_providers(idp: FakeIdP, *, trusted: bool = True) -> list[IdentityProviderSettings]:
    return [
        IdentityProviderSettings(
            id="fake",
            issuer=idp.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
            trust_email_verified=trusted,
        ),
        IdentityProviderSettings(
            id="other",
            display_name="Untrusted",
            issuer=idp.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
            trust_email_verified=False,
        ),
        IdentityProviderSettings(
            id="gh",
            kind="github",
            client_id="github-client",
            client_secret="gh-secret",  # type: ignore[arg-type]
            authorization_endpoint=f"{idp.issuer}/authorize",
            token_endpoint=f"{idp.issuer}/login/oauth/access_token",
            api_base_url=f"{idp.issuer}/api",
            trust_email_verified=True,
        ),
    ]


@pytest.fixture
def settings(settings: Settings, idp: FakeIdP) -> Settings:
    social = SocialSettings(
        providers=fake_providers(idp),
        callback_base_url=BASE,
        app_redirect_uris=[APP_REDIRECT],
        metadata_cache_seconds=3600,
        jwks_refresh_min_seconds=0,
    )
    return settings.model_copy(update={"social": social})


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.30", 52000))
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"User-Agent": "pytest-browser"}
    ) as c:
        yield c


async def start(browser: httpx.AsyncClient, provider: str = "fake", **params: str) -> str:
    """Ask Atrium to start a flow; the provider's authorization URL."""
    response = await browser.get(f"/api/v1/auth/oauth/{provider}/authorize", params=params)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def at_provider(url: str) -> str:
    """Follow the authorization URL at the fake provider; the redirect back to Atrium."""
    async with http_client(5) as real:
        response = await real.get(url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def sign_in(
    browser: httpx.AsyncClient, provider: str = "fake", **params: str
) -> httpx.Response:
    """The whole flow in one browser; Atrium's answer to the callback."""
    back = await at_provider(await start(browser, provider, **params))
    return await browser.get(back)
