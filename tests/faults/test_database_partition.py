"""A network partition between a node and PostgreSQL (packets dropped, nothing refused):
requests that need the database answer 503 after the configured time-outs instead of
hanging, and requests that do not need it keep being served meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from atrium.config import DatabaseSettings, Settings
from atrium.core.db import create_engine
from tests.factories import PASSWORD
from tests.faults.conftest import Node, PgCluster, StartNode, TcpProxy, fault_settings

ME = "/api/v1/users/me"
# Not a timing assertion: a guard so that a request hanging on the black hole (as it did
# without time-outs) fails the test instead of blocking the run.
HANG = 60


async def test_a_partition_answers_503_for_the_database_and_serves_the_rest(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path, start_node: StartNode
) -> None:
    async with TcpProxy("127.0.0.1", pg_cluster.port) as proxy:
        settings = fault_settings(
            tmp_path,
            pg_url.replace(f":{pg_cluster.port}/", f":{proxy.port}/"),
            database={
                "pool_size": 2,
                "max_overflow": 1,
                "pool_timeout_seconds": 0.5,
                "connect_timeout_seconds": 0.5,
                "command_timeout_seconds": 0.5,
                "statement_timeout_seconds": 0.4,
            },
        )
        node: Node = await start_node(settings)
        client = node.client
        r = await client.post(
            "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
        r = await client.post(
            "/api/v1/auth/login", data={"username": "ada@example.com", "password": PASSWORD}
        )
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await client.get(ME, headers=auth)).status_code == 200  # principal cached

        proxy.hold()
        needing_db = [
            asyncio.create_task(
                client.post(
                    "/api/v1/auth/register",
                    json={"email": f"p{i}@example.com", "password": PASSWORD},
                )
            )
            for i in range(8)
        ]
        await asyncio.sleep(0)
        # Served while the database is unreachable and the requests above are waiting.
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get(ME, headers=auth)).status_code == 200
        answers = await asyncio.wait_for(asyncio.gather(*needing_db), timeout=HANG)

        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "service_unavailable"
            assert int(answer.headers["retry-after"]) > 0
        ready = await asyncio.wait_for(client.get("/health/ready"), timeout=HANG)
        assert ready.status_code == 503

        proxy.release()
        for _ in range(100):
            r = await client.post(
                "/api/v1/auth/register", json={"email": "after@example.com", "password": PASSWORD}
            )
            if r.status_code != 503:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 201, r.text


async def test_statement_and_keepalive_settings_reach_the_server(
    pg_cluster: PgCluster, pg_url: str, tmp_path: Path
) -> None:
    settings = fault_settings(tmp_path, pg_url)
    database: DatabaseSettings = settings.database
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            shown = {
                name: (await conn.execute(text(f"SHOW {name}"))).scalar()
                for name in (
                    "statement_timeout",
                    "idle_in_transaction_session_timeout",
                    "tcp_keepalives_idle",
                    "tcp_keepalives_interval",
                    "tcp_keepalives_count",
                )
            }
    finally:
        await engine.dispose()
    assert shown == {
        "statement_timeout": "4s",
        "idle_in_transaction_session_timeout": "1min",
        "tcp_keepalives_idle": str(database.tcp_keepalives_idle_seconds),
        "tcp_keepalives_interval": str(database.tcp_keepalives_interval_seconds),
        "tcp_keepalives_count": str(database.tcp_keepalives_count),
    }


async def test_a_statement_slower_than_the_server_limit_is_a_503_not_a_500(
    pg_url: str, tmp_path: Path, start_node: StartNode
) -> None:
    """statement_timeout cancels on the server (57014); the answer is an outage's 503."""
    settings: Settings = fault_settings(
        tmp_path, pg_url, database={"statement_timeout_seconds": 0.05}
    )
    node: Node = await start_node(settings)

    @node.app.get("/slow-for-test")
    async def slow() -> None:
        async with node.ctx.sessionmaker() as db:
            await db.execute(text("SELECT pg_sleep(2)"))

    response = await node.client.get("/slow-for-test")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


@pytest.mark.parametrize("statement_timeouts", [True, False])
async def test_maintenance_engines_may_lift_the_statement_bounds(
    pg_url: str, tmp_path: Path, statement_timeouts: bool
) -> None:
    engine = create_engine(fault_settings(tmp_path, pg_url), statement_timeouts=statement_timeouts)
    try:
        async with engine.connect() as conn:
            value = (await conn.execute(text("SHOW statement_timeout"))).scalar()
    finally:
        await engine.dispose()
    assert value == ("4s" if statement_timeouts else "0")
