"""A database outage while the service runs: 503 with Retry-After, then recovery by itself.

PostgreSQL is reached through a TCP proxy the test controls, so the outage is real at the
network level (connections cut, new ones refused) without stopping the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from atrium.config import AuthSettings, DatabaseSettings, Environment, RateLimitSettings, Settings
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from tests.conftest import BACKENDS, FAST_ARGON2, reset_database
from tests.factories import PASSWORD

pytestmark = pytest.mark.skipif(
    "postgresql" not in BACKENDS, reason="needs ATRIUM_TEST_DATABASE_URL (PostgreSQL)"
)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and refuses
    new ones, ``restore()`` accepts again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.writers.discard(writer)
            writer.transport.abort()
            return
        self.writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for _ in range(3):  # let connections accepted just before the close register
            await asyncio.sleep(0)
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()


@pytest.fixture
async def proxied_client(
    pg_database: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, TcpProxy]]:
    url = make_url(pg_database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.restore()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path / "var",
        database=DatabaseSettings(
            url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            auto_migrate=False,
            pool_timeout_seconds=1.0,
            connect_timeout_seconds=1.0,
        ),
        auth=AuthSettings(**FAST_ARGON2),
        rate_limit=RateLimitSettings(enabled=False),
    )
    app = create_app(settings, FrozenClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as client:
            yield client, proxy
        if proxy.server is None or not proxy.server.is_serving():
            await proxy.restore()
    # After the lifespan: its background workers and jobs no longer write while the
    # tables are truncated (a TRUNCATE inside it deadlocked with them).
    engine = app.state.ctx.engine
    await reset_database(engine)
    await engine.dispose()
    with contextlib.suppress(Exception):
        await proxy.cut()


async def _register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})


async def test_outage_answers_503_and_the_service_recovers_by_itself(
    proxied_client: tuple[httpx.AsyncClient, TcpProxy],
) -> None:
    client, proxy = proxied_client
    assert (await _register(client, "before@example.com")).status_code == 201

    await proxy.cut()
    during = await asyncio.wait_for(_register(client, "during@example.com"), timeout=10)
    ready = await client.get("/health/ready")
    assert during.status_code == 503
    assert during.headers["content-type"] == "application/problem+json"
    assert during.json()["code"] == "service_unavailable"
    assert int(during.headers["retry-after"]) > 0
    assert ready.status_code == 503

    await proxy.restore()
    after = await _register(client, "after@example.com")
    assert after.status_code == 201
    assert (await client.get("/health/ready")).status_code == 200


async def test_requests_in_flight_during_an_outage_never_get_a_500(
    proxied_client: tuple[httpx.AsyncClient, TcpProxy],
) -> None:
    client, proxy = proxied_client

    async def flow(i: int) -> int:
        r = await _register(client, f"inflight{i}@example.com")
        return r.status_code

    tasks = [asyncio.create_task(flow(i)) for i in range(20)]
    await asyncio.sleep(0.01)
    await proxy.cut()
    statuses = await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
    await proxy.restore()
    assert set(statuses) <= {201, 503}
