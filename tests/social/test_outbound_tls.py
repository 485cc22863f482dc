"""Outbound HTTPS shares one TLS context per process (atrium.core.outbound): a social login's
provider calls, the profile-picture import, webhook pools and the drand beacon build none
of their own (each would load the whole CA bundle again, ~18 ms of CPU)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atrium.account.avatar_import import import_avatars_job
from atrium.apps.raffles.beacon import DrandBeacon
from atrium.apps.raffles.exceptions import BeaconUnavailable
from atrium.config import WebhookSettings
from atrium.context import AppContext
from atrium.core.jobs import JobContext
from atrium.core.outbound import http_client, tls_context
from atrium.core.ssrf import parse_url
from atrium.models import Profile, User
from atrium.webhooks.sender import WebhookClient
from tests.images import image_bytes
from tests.social.conftest import sign_in
from tests.social.fake_idp import FakeIdP


@pytest.fixture
def contexts_built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every TLS context built from now on (httpx builds them with
    ``ssl.create_default_context``), once the process's own exists."""
    tls_context()
    built: list[dict[str, Any]] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return built


def test_the_context_verifies_certificates_and_host_names() -> None:
    context = tls_context()
    assert context is tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded


async def test_social_logins_and_the_picture_import_build_no_tls_context(
    browser: httpx.AsyncClient,
    ctx: AppContext,
    idp: FakeIdP,
    contexts_built: list[dict[str, Any]],
) -> None:
    ctx.settings.social.avatar_allow_loopback = True
    idp.pictures["ada.png"] = (200, image_bytes("PNG", (120, 120)), {})
    idp.claims = {"picture": f"{idp.issuer}/pictures/ada.png"}

    # OpenID Connect: discovery, JWKS, token and userinfo requests; then GitHub's token
    # endpoint and API; then the picture, fetched by the background job.
    assert (await sign_in(browser)).status_code == 303
    assert (await sign_in(browser, "gh")).status_code == 303
    await import_avatars_job(JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {}))

    assert idp.jwks_fetches >= 1
    assert idp.picture_fetches == 1
    async with ctx.sessionmaker() as db:
        ada = await db.scalar(select(User).where(User.email_normalized == "ada@example.com"))
        octo = await db.scalar(select(User).where(User.email_normalized == "octo@example.com"))
        assert ada is not None
        assert octo is not None
        profile = await db.get(Profile, ada.id)
    assert profile is not None
    assert profile.avatar_version is not None
    assert contexts_built == []


async def test_webhook_pools_and_the_beacon_build_no_tls_context(
    contexts_built: list[dict[str, Any]],
) -> None:
    client = WebhookClient(WebhookSettings())
    for host in ("hooks.example.com", "other.example.net"):
        client._pool(parse_url(f"https://{host}/in", client.settings), "192.0.2.10")
    assert client.pools == 2
    await client.aclose()

    beacon = DrandBeacon("http://127.0.0.1:9", "ab" * 32, 1_700_000_000, 3, timeout=1)
    with pytest.raises(BeaconUnavailable):
        await beacon.value(1)  # nothing listens on the discard port: refused
    async with http_client(1):
        pass
    assert contexts_built == []
