"""PostgreSQL restarting, crashing or dropping connections under concurrent requests: every
request answers normally or 503 ``service_unavailable`` with ``Retry-After`` — never a 500 —
and a broken connection is discarded, never handed to the next request."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from atrium.core.db import connection_broken
from tests.factories import PASSWORD
from tests.faults.conftest import Node, PgCluster, StartNode, TcpProxy, fault_settings

ME = "/api/v1/users/me"


class Load:
    """Concurrent clients doing what users do, every answer recorded."""

    def __init__(self, node: Node, tokens: list[str]) -> None:
        self.node = node
        self.tokens = tokens
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._seq = itertools.count()

    async def _one(self, rnd: random.Random) -> httpx.Response:
        client = self.node.client
        auth = {"Authorization": f"Bearer {rnd.choice(self.tokens)}"}
        kind = rnd.randrange(6)
        if kind == 0:
            email = f"load{next(self._seq)}@example.com"
            return await client.post(
                "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
        if kind == 1:
            return await client.post(
                "/api/v1/auth/login", data={"username": "user0@example.com", "password": PASSWORD}
            )
        if kind == 2:
            return await client.patch(ME, json={"full_name": f"n{rnd.random()}"}, headers=auth)
        if kind == 3:
            return await client.get(f"{ME}/sessions", headers=auth)
        if kind == 4:
            return await client.get("/api/v1/health")
        return await client.get(ME, headers=auth)  # the principal load path

    async def _client(self, seed: int) -> None:
        rnd = random.Random(seed)
        while not self._stop.is_set():
            response = await self._one(rnd)
            self.statuses[response.status_code] += 1
            if response.status_code == 503 and response.request.url.path == "/api/v1/health":
                continue  # readiness reports the database down
            if response.status_code >= 500 and (
                response.status_code != 503
                or response.json().get("code") != "service_unavailable"
                or int(response.headers.get("retry-after", "0")) <= 0
            ):
                self.failures.append(f"{response.status_code} {response.text}")

    async def run_while(self, chaos: Callable[[], Awaitable[None]], clients: int = 12) -> None:
        tasks = [asyncio.create_task(self._client(i)) for i in range(clients)]
        try:
            await chaos()
        finally:
            self._stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)


class DisconnectLog:
    """Records, for every error the engine sees, whether SQLAlchemy treated it as a
    disconnect (and so invalidated the connection)."""

    def __init__(self) -> None:
        self.broken_kept: list[str] = []
        self.discarded = 0

    def __call__(self, context: ExceptionContext) -> None:
        # Runs after Atrium's own handle_error hook (registered first).
        if connection_broken(context.original_exception):
            if context.is_disconnect:
                self.discarded += 1
            else:
                self.broken_kept.append(repr(context.original_exception))


async def _prepare(node: Node, users: int = 3) -> list[str]:
    tokens = []
    for i in range(users):
        email = f"user{i}@example.com"
        r = await node.client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        r = await node.client.post(
            "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        tokens.append(r.json()["access_token"])
    return tokens


async def _recovered(node: Node, token: str) -> None:
    """The node serves again by itself, and then every request succeeds (no broken
    connection left in the pool)."""
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(200):
        if (await node.client.get(ME, headers=auth)).status_code == 200:
            break
        await asyncio.sleep(0.1)
    statuses = [(await node.client.get(ME, headers=auth)).status_code for _ in range(30)]
    assert set(statuses) == {200}


def _node_settings(tmp_path: Path, url: str) -> Any:
    return fault_settings(
        tmp_path,
        url,
        database={
            "pool_size": 4,
            "max_overflow": 4,
            "pool_timeout_seconds": 2.0,
            "connect_timeout_seconds": 2.0,
        },
        # Every authenticated request loads its principal from the database (the path with
        # the single-flight sharing of auth/principal.py).
        auth={"principal_cache_ttl_seconds": 0},
    )


async def test_postgresql_restarts_and_crashes_under_load_give_no_500(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, start_node: StartNode
) -> None:
    node: Node = await start_node(_node_settings(tmp_path, pg_url))
    disconnects = DisconnectLog()
    event.listen(node.ctx.engine.sync_engine, "handle_error", disconnects)
    tokens = await _prepare(node)
    load = Load(node, tokens)

    async def chaos() -> None:
        for mode in ("fast", "immediate", "fast"):
            await asyncio.sleep(0.5)
            await asyncio.to_thread(pg_cluster.stop, mode)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(pg_cluster.start)
        await asyncio.sleep(0.5)

    await load.run_while(chaos)

    assert load.failures == [], load.failures[:5]
    assert load.statuses[503] > 0  # the outages happened
    assert disconnects.broken_kept == [], disconnects.broken_kept[:5]
    await _recovered(node, tokens[0])


async def test_connections_killed_under_load_give_no_500(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, start_node: StartNode
) -> None:
    async with TcpProxy("127.0.0.1", pg_cluster.port) as proxy:
        url = pg_url.replace(f":{pg_cluster.port}/", f":{proxy.port}/")
        node: Node = await start_node(_node_settings(tmp_path, url))
        disconnects = DisconnectLog()
        event.listen(node.ctx.engine.sync_engine, "handle_error", disconnects)
        tokens = await _prepare(node)
        load = Load(node, tokens)

        async def chaos() -> None:
            for _ in range(25):
                await asyncio.sleep(0.1)
                proxy.kill_connections()
            await asyncio.sleep(0.3)

        await load.run_while(chaos)
        assert load.failures == [], load.failures[:5]
        assert load.statuses[503] > 0
        assert disconnects.broken_kept == [], disconnects.broken_kept[:5]
        await _recovered(node, tokens[0])


def test_bad_input_and_defects_are_not_taken_for_an_outage() -> None:
    """Only outages answer 503: a value the driver cannot encode, or a constraint nobody
    expected, stays an error of its own (4xx upstream, or a 500 that gets fixed)."""
    import asyncpg
    from sqlalchemy import exc as sa_exc

    from atrium.core.db import database_unavailable

    def wrapped(cause: BaseException, kind: type[sa_exc.DBAPIError]) -> BaseException:
        try:
            raise kind("SELECT 1", {}, cause) from cause
        except sa_exc.DBAPIError as exc:
            return exc

    data_error = asyncpg.exceptions.DataError("invalid input for query argument $1")
    unique = asyncpg.exceptions.UniqueViolationError("duplicate key")
    shutdown = asyncpg.exceptions.AdminShutdownError("the database system is shutting down")
    busy = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    state = asyncpg.exceptions.InternalClientError("cannot switch to state 15")
    assert not database_unavailable(wrapped(data_error, sa_exc.InterfaceError))
    assert not database_unavailable(wrapped(unique, sa_exc.IntegrityError))
    assert database_unavailable(wrapped(shutdown, sa_exc.DBAPIError))
    assert database_unavailable(wrapped(busy, sa_exc.InterfaceError))
    assert database_unavailable(wrapped(state, sa_exc.InternalError))
    assert database_unavailable(ConnectionResetError())
    assert database_unavailable(TimeoutError())
