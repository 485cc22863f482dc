"""Redis that hangs (accepts, never answers): each request waits for at most one Redis
time-out, because a failed call opens a circuit breaker that skips Redis for a while.

No timing is measured: the test counts what reached Redis, on a clock it moves itself."""

from __future__ import annotations

from pathlib import Path

from atrium.core.cache import RedisBreaker
from tests.factories import PASSWORD
from tests.faults.conftest import Node, RedisServer, StartNode, TcpProxy, fault_settings

ME = "/api/v1/users/me"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_hanging_redis_is_tried_once_per_cooldown_not_once_per_call(
    pg_url: str, tmp_path: Path, start_node: StartNode, redis_server: RedisServer
) -> None:
    async with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        settings = fault_settings(
            tmp_path,
            pg_url,
            redis_url=f"redis://127.0.0.1:{proxy.port}/0",
            redis={"socket_timeout_seconds": 0.2, "breaker_cooldown_seconds": 5},
            rate_limit={"login": "1000/minute", "registration": "1000/minute"},
        )
        node: Node = await start_node(settings)
        breaker: RedisBreaker = node.ctx.redis_breaker
        clock = FakeClock()
        breaker.clock = clock
        client = node.client
        r = await client.post(
            "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
        login = {"username": "ada@example.com", "password": PASSWORD}
        r = await client.post("/api/v1/auth/login", data=login)
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await client.get(ME, headers=auth)).status_code == 200

        proxy.hold()
        before = proxy.chunks
        answers = [(await client.get(ME, headers=auth)).status_code for _ in range(20)]
        answers += [(await client.post("/api/v1/auth/login", data=login)).status_code]
        answers += [(await client.get(ME, headers=auth)).status_code for _ in range(10)]

        # Every request was served (from the database), and Redis saw only the first
        # attempt: the call in flight when it stopped answering (a handful of bytes chunks
        # of one command, or of a reconnection's handshake).
        assert set(answers) == {200}
        first = proxy.chunks - before
        assert 1 <= first <= 3
        assert breaker.is_open
        assert breaker.skipped >= 30

        clock.now += 5  # the cooldown has passed: one probe, which hangs and reopens
        assert (await client.get(ME, headers=auth)).status_code == 200
        assert (await client.get(ME, headers=auth)).status_code == 200
        probe = proxy.chunks - before - first
        assert 1 <= probe <= 3
        assert breaker.is_open

        proxy.release()
        proxy.kill_connections()  # the held connections are stale: reconnect
        clock.now += 5
        assert (await client.get(ME, headers=auth)).status_code == 200
        assert not breaker.is_open
        after = proxy.chunks
        assert (await client.get(ME, headers=auth)).status_code == 200
        assert proxy.chunks > after  # Redis is used again
