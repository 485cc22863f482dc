"""SSRF defences: schemes, private and loopback addresses, localhost names, redirects, and
DNS answers that change (the resolver replaced through `atrium.core.ssrf.resolve_host`)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from sqlalchemy import select

from atrium.config import WebhookSettings
from atrium.context import AppContext
from atrium.core import ssrf
from atrium.core.clock import FrozenClock
from atrium.core.ssrf import UrlRefused
from atrium.models import WebhookAttempt, WebhookDelivery
from atrium.webhooks.sender import WebhookClient, post
from tests.dispatch import dispatch
from tests.webhooks.conftest import Receiver, worker
from tests.webhooks.test_webhooks import admin, create, emit_one

STRICT = WebhookSettings()
LOOPBACK_ONLY = WebhookSettings(allow_loopback=True)

REFUSED_URLS = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "http://user:pw@example.com/hook",
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://100.100.100.200/hook",
    "http://224.0.0.1/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_urls_that_are_not_public_http_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        ssrf.parse_url(url, STRICT)


def test_public_urls_are_accepted() -> None:
    for url in ("https://hooks.example.com/a?b=1", "http://93.184.216.34:8080/x"):
        assert ssrf.parse_url(url, STRICT).scheme in ("http", "https")


def test_settings_allow_loopback_then_private_networks_explicitly() -> None:
    ssrf.parse_url("http://127.0.0.1/hook", LOOPBACK_ONLY)
    ssrf.parse_url("http://localhost/hook", LOOPBACK_ONLY)
    with pytest.raises(UrlRefused):
        ssrf.parse_url("http://10.0.0.1/hook", LOOPBACK_ONLY)
    with pytest.raises(UrlRefused):
        ssrf.parse_url("http://169.254.169.254/", LOOPBACK_ONLY)
    private = WebhookSettings(allow_private_networks=True)
    ssrf.check_address(ipaddress.ip_address("10.0.0.1"), private)
    with pytest.raises(UrlRefused):
        ssrf.check_address(ipaddress.ip_address("224.0.0.1"), private)


async def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["10.9.8.7"]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    result = await post("http://hooks.example.test/hook", b"{}", {}, LOOPBACK_ONLY)

    assert not result.ok
    assert result.status_code is None
    assert "10.9.8.7 is not a public address" in (result.error or "")


async def test_a_mixed_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "192.168.0.10"]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    result = await post("http://hooks.example.test/hook", b"{}", {}, LOOPBACK_ONLY)
    assert not result.ok
    assert "192.168.0.10" in (result.error or "")


async def test_the_connection_goes_to_the_address_checked_once(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    answers = [["127.0.0.1"], ["10.0.0.1"]]
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    url = f"http://hooks.example.test:{receiver.port}/hook"

    first = await post(url, b"{}", {}, LOOPBACK_ONLY)
    # The name now points elsewhere (DNS rebinding): checked again, refused.
    second = await post(url, b"{}", {}, LOOPBACK_ONLY)

    assert first.ok, first.error
    assert calls == ["hooks.example.test", "hooks.example.test"]  # once per attempt
    [request] = receiver.requests  # reached through the pinned address ...
    assert request.headers["host"] == f"hooks.example.test:{receiver.port}"  # ... by name
    assert not second.ok
    assert "10.0.0.1" in (second.error or "")


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver, clock: FrozenClock
) -> None:
    auth = await admin(client, ctx)
    await create(client, auth, receiver.url, ["user.updated"])
    await dispatch(ctx)
    receiver.requests.clear()
    receiver.default = 302
    receiver.answer_headers = [(b"location", b"http://169.254.169.254/latest/meta-data")]
    event_id = await emit_one(ctx)
    await dispatch(ctx)

    assert await worker(ctx).drain() == 1

    assert len(receiver.requests) == 1
    async with ctx.sessionmaker() as db:
        row = (
            await db.execute(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id))
        ).scalar_one()
        attempt = (
            await db.execute(select(WebhookAttempt).where(WebhookAttempt.delivery_id == row.id))
        ).scalar_one()
    assert row.status == "pending"
    assert attempt.status_code == 302
    assert "not followed" in (attempt.error or "")


async def test_the_answer_read_is_capped(receiver: Receiver) -> None:
    receiver.default = 200
    receiver.answer_body = b"x" * 1_000_000
    capped = WebhookSettings(allow_loopback=True, max_response_bytes=4096)

    result = await post(receiver.url, b"{}", {}, capped)

    assert result.ok
    assert result.excerpt is not None
    assert len(result.excerpt) == 1000


async def test_a_receiver_that_does_not_answer_times_out() -> None:
    import socket

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        quick = WebhookSettings(allow_loopback=True, read_timeout_seconds=0.3)
        result = await post(f"http://127.0.0.1:{port}/", b"{}", {}, quick)
    assert not result.ok
    assert (result.error or "").startswith("timeout")


async def test_the_pooled_client_reuses_a_connection_per_host_and_checked_address(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    client = WebhookClient(LOOPBACK_ONLY)
    try:
        for _ in range(3):
            assert (await client.post(f"http://a.example.test:{receiver.port}/", b"{}", {})).ok
        assert (await client.post(f"http://b.example.test:{receiver.port}/", b"{}", {})).ok
    finally:
        await client.aclose()

    a1, a2, a3, b = receiver.requests
    assert a1.client == a2.client == a3.client  # one kept-alive connection for a.example.test
    assert b.client != a1.client  # another name never rides it, whatever its address
    assert b.headers["host"] == f"b.example.test:{receiver.port}"


async def test_the_pooled_client_checks_every_attempt_against_rebinding(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    answers = [["127.0.0.1"], ["10.0.0.1"], ["169.254.169.254"], ["127.0.0.1"]]
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[len(calls) - 1]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    client = WebhookClient(LOOPBACK_ONLY)
    try:
        results = [await client.post(url, b"{}", {}) for _ in answers]
    finally:
        await client.aclose()

    assert len(calls) == 4  # resolved and checked on every attempt, pooled or not
    assert [r.ok for r in results] == [True, False, False, True]
    assert "10.0.0.1 is not a public address" in (results[1].error or "")
    assert "169.254.169.254 is not a public address" in (results[2].error or "")
    # The refused attempts reached nobody, not even over the kept-alive connection.
    assert len(receiver.requests) == 2
    assert receiver.requests[0].client == receiver.requests[1].client


async def test_the_pooled_client_refuses_private_addresses_and_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["192.168.1.20"]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    client = WebhookClient(STRICT)
    try:
        for url in ("http://hooks.example.test/", "http://10.1.2.3/", "http://localhost/"):
            result = await client.post(url, b"{}", {})
            assert not result.ok
            assert (result.error or "").startswith("refused:"), result.error
        assert client.pools == 0  # nothing was opened
    finally:
        await client.aclose()


async def test_least_recently_used_pools_are_closed_past_the_limit(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    client = WebhookClient(LOOPBACK_ONLY, max_pools=2)
    try:
        for name in ("a", "b", "c", "a"):
            assert (await client.post(f"http://{name}.example.test:{receiver.port}/", b"", {})).ok
        assert client.pools == 2
    finally:
        await client.aclose()
    first_a, _, _, second_a = receiver.requests
    assert first_a.client != second_a.client  # a's pool was closed when c came
