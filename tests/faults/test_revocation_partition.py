"""Two nodes sharing PostgreSQL and Redis; node A loses Redis (a proxy cuts it), node B
keeps it. A revocation made on A either succeeds with every node refusing at once, or
fails with 503 and changes nothing — B never keeps accepting what A reported revoked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from atrium.core.cache import RedisBreaker
from tests.factories import PASSWORD, signed_in_as
from tests.faults.conftest import Node, RedisServer, StartNode, TcpProxy, fault_settings

ME = "/api/v1/users/me"
USERS = "/api/v1/admin/users"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Cluster:
    a: Node
    b: Node
    proxy: TcpProxy  # between A and Redis
    clock: FakeClock  # A's Redis breaker

    async def a_loses_redis(self) -> None:
        await self.proxy.cut()

    async def a_regains_redis(self) -> None:
        await self.proxy.restore()
        self.clock.now += 3600  # past the breaker's cooldown


def _signing_key() -> str:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return pem.decode()


@pytest.fixture
async def cluster(
    pg_url: str, tmp_path: Path, start_node: StartNode, redis_server: RedisServer
) -> AsyncIterator[Cluster]:
    prefix = f"atrium-fault:{uuid.uuid4().hex}:"
    async with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        shared = {
            "redis_prefix": prefix,
            "redis": {"socket_timeout_seconds": 0.5},
            "auth": {"signing_key": _signing_key()},  # every node verifies every token
        }
        via_proxy = f"redis://127.0.0.1:{proxy.port}/0"
        a: Node = await start_node(fault_settings(tmp_path, pg_url, redis_url=via_proxy, **shared))
        b: Node = await start_node(
            fault_settings(tmp_path, pg_url, redis_url=redis_server.url, **shared)
        )
        clock = FakeClock()
        breaker: RedisBreaker = a.ctx.redis_breaker
        breaker.clock = clock
        yield Cluster(a, b, proxy, clock)


async def _signed_in(node: Node, email: str) -> dict[str, str]:
    r = await node.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await node.client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_a_logout_on_a_node_without_redis_fails_and_changes_nothing(
    cluster: Cluster,
) -> None:
    a, b = cluster.a, cluster.b
    auth = await _signed_in(a, "ada@example.com")
    assert (await b.client.get(ME, headers=auth)).status_code == 200  # cached in Redis

    await cluster.a_loses_redis()
    refused = await a.client.post("/api/v1/auth/logout", headers=auth)

    assert refused.status_code == 503
    assert refused.json()["code"] == "service_unavailable"
    assert int(refused.headers["retry-after"]) > 0
    assert (await b.client.get(ME, headers=auth)).status_code == 200  # still a live session
    assert (await a.client.get(ME, headers=auth)).status_code == 200

    await cluster.a_regains_redis()
    assert (await a.client.post("/api/v1/auth/logout", headers=auth)).status_code == 204
    refused_on_b = await b.client.get(ME, headers=auth)
    assert refused_on_b.status_code == 401
    assert (await a.client.get(ME, headers=auth)).status_code == 401


async def test_a_suspension_on_a_node_without_redis_fails_and_changes_nothing(
    cluster: Cluster,
) -> None:
    a, b = cluster.a, cluster.b
    _, root = await signed_in_as(a.client, a.ctx, "root@example.com", "superadmin")
    auth = await _signed_in(a, "ada@example.com")
    me = (await b.client.get(ME, headers=auth)).json()  # cached in Redis

    suspend = {"status": "suspended"}
    await cluster.a_loses_redis()
    refused = await a.client.patch(f"{USERS}/{me['id']}", headers=root, json=suspend)

    assert refused.status_code == 503
    assert (await b.client.get(ME, headers=auth)).status_code == 200
    assert (await b.client.get(f"{USERS}/{me['id']}", headers=root)).json()["status"] == "active"

    await cluster.a_regains_redis()
    done = await a.client.patch(f"{USERS}/{me['id']}", headers=root, json=suspend)
    assert done.status_code == 200
    assert (await b.client.get(ME, headers=auth)).status_code == 401


async def test_a_role_revoked_on_a_node_without_redis_fails_and_changes_nothing(
    cluster: Cluster,
) -> None:
    a, b = cluster.a, cluster.b
    _, root = await signed_in_as(a.client, a.ctx, "root@example.com", "superadmin")
    uid, moderator = await signed_in_as(a.client, a.ctx, "mod@example.com", "moderator")
    assert (await b.client.get(USERS, headers=moderator)).status_code == 200  # B caches grants

    await cluster.a_loses_redis()
    refused = await a.client.delete(f"{USERS}/{uid}/roles/moderator", headers=root)

    assert refused.status_code == 503
    assert (await b.client.get(USERS, headers=moderator)).status_code == 200
    roles = (await b.client.get(f"{USERS}/{uid}", headers=root)).json()["roles"]
    assert "moderator" in roles

    await cluster.a_regains_redis()
    done = await a.client.delete(f"{USERS}/{uid}/roles/moderator", headers=root)
    assert done.status_code == 200
    denied = await b.client.get(USERS, headers=moderator)
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"


async def test_a_node_that_lost_redis_refuses_what_another_node_revoked(
    cluster: Cluster,
) -> None:
    """The refusing side: a node without Redis reads sessions and grants from the
    database, so a revocation made elsewhere is refused there at once too."""
    a, b = cluster.a, cluster.b
    _, root = await signed_in_as(b.client, b.ctx, "root@example.com", "superadmin")
    uid, moderator = await signed_in_as(b.client, b.ctx, "mod@example.com", "moderator")
    auth = await _signed_in(b, "ada@example.com")
    assert (await a.client.get(ME, headers=auth)).status_code == 200
    assert (await a.client.get(USERS, headers=moderator)).status_code == 200

    await cluster.a_loses_redis()
    assert (await b.client.post("/api/v1/auth/logout", headers=auth)).status_code == 204
    assert (
        await b.client.delete(f"{USERS}/{uid}/roles/moderator", headers=root)
    ).status_code == 200

    assert (await a.client.get(ME, headers=auth)).status_code == 401
    assert (await a.client.get(USERS, headers=moderator)).status_code == 403
