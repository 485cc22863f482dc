"""Revoking a key, suspending or deleting its owner on one node: refused on another node
sharing Redis by the time the request that made the change has answered (the principal
cache's publication, see atrium.auth.api_keys)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from atrium.config import Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from tests.conftest import Database, reset_database
from tests.factories import PASSWORD, grant_role, login, register
from tests.users.test_principal_cache import count_statements

REDIS_URL = os.environ.get("ATRIUM_TEST_REDIS_URL")
ME = "/api/v1/users/me"
KEYS = "/api/v1/users/me/api-keys"
ADMIN = "/api/v1/admin/users"

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="set ATRIUM_TEST_REDIS_URL to test nodes sharing Redis"
)

Started = tuple[Any, httpx.AsyncClient]


@pytest.fixture
async def nodes(
    settings: Settings, clock: FrozenClock, database: Database
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Callable[..., Any]]]:
    """Two applications (two nodes) over the same database and Redis: their clients and
    a function giving the context of either."""
    if not settings.redis.url:
        pytest.skip("this backend uses the in-process cache; Redis is configured for postgresql")
    apps: list[Any] = []
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(settings, clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://atrium.test")
                )
            )
            apps.append(app)
        assert apps[0].state.ctx.cache is not apps[1].state.ctx.cache

        def context_of(index: int) -> Any:
            return apps[index].state.ctx

        yield clients[0], clients[1], context_of
        ctx: AppContext = apps[0].state.ctx
        await reset_database(ctx.engine)


async def _owner_with_key(node: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str], str]:
    user = await register(node, email)
    tokens = await login(node, email)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    created = await node.post(KEYS, headers=auth, json={"name": "ci"})
    assert created.status_code == 201, created.text
    return user["id"], auth, created.json()["key"]


async def _warm(node: httpx.AsyncClient, key: str, ctx: Any) -> None:
    """Two requests on ``node``: the second is answered from the shared cache alone."""
    headers = {"Authorization": f"Bearer {key}"}
    assert (await node.get(ME, headers=headers)).status_code == 200
    with count_statements(ctx.engine) as counter:
        assert (await node.get(ME, headers=headers)).status_code == 200
    assert counter.count == 0


async def test_a_key_revoked_on_one_node_is_refused_at_once_on_the_other(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient, Callable[..., Any]],
) -> None:
    node_a, node_b, context_of = nodes
    _, auth, key = await _owner_with_key(node_a, "ada@example.com")
    await _warm(node_b, key, context_of(1))
    key_id = (await node_a.get(KEYS, headers=auth)).json()[0]["id"]

    assert (await node_a.delete(f"{KEYS}/{key_id}", headers=auth)).status_code == 204
    response = await node_b.get(ME, headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_a_key_of_an_owner_suspended_on_one_node_is_refused_at_once_on_the_other(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient, Callable[..., Any]],
    settings: Settings,
) -> None:
    node_a, node_b, context_of = nodes
    uid, _, key = await _owner_with_key(node_a, "ada@example.com")
    root = await register(node_a, "root@example.com")
    # grant_role publishes through the context of an app: any node's will do.
    await grant_role(context_of(0), root["id"], "superadmin")
    root_auth = {
        "Authorization": f"Bearer {(await login(node_a, 'root@example.com'))['access_token']}"
    }
    await _warm(node_b, key, context_of(1))

    suspended = await node_a.patch(
        f"{ADMIN}/{uid}", headers=root_auth, json={"status": "suspended"}
    )
    response = await node_b.get(ME, headers={"Authorization": f"Bearer {key}"})

    assert suspended.status_code == 200
    assert response.status_code == 401


async def test_a_key_of_an_owner_deleted_on_one_node_is_refused_at_once_on_the_other(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient, Callable[..., Any]],
) -> None:
    node_a, node_b, context_of = nodes
    _, auth, key = await _owner_with_key(node_a, "ada@example.com")
    await _warm(node_b, key, context_of(1))

    deleted = await node_a.request("DELETE", ME, headers=auth, json={"password": PASSWORD})
    response = await node_b.get(ME, headers={"Authorization": f"Bearer {key}"})

    assert deleted.status_code == 202  # deletion scheduled; the account is hidden at once
    assert response.status_code == 401


async def test_a_key_works_on_every_node(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient, Callable[..., Awaitable[Any]]],
) -> None:
    node_a, node_b, _ = nodes
    _, _, key = await _owner_with_key(node_a, "ada@example.com")

    for node in (node_a, node_b):
        response = await node.get(ME, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
