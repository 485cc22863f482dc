"""Live notices over server-sent events and WebSocket, on real servers (uvicorn)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from atrium.config import Settings
from atrium.context import AppContext
from atrium.main import create_app
from tests.conftest import REDIS_URL, Database
from tests.factories import PASSWORD

STREAM = "/api/v1/users/me/notifications/stream"
NEW_PASSWORD = "a brand new passphrase"


def live_settings(settings: Settings) -> Settings:
    """The test settings with the in-process dispatcher on, as in the embedded default."""
    events = settings.events.model_copy(update={"worker_in_api": True})
    realtime = settings.realtime.model_copy(update={"heartbeat_seconds": 0.5})
    return settings.model_copy(update={"events": events, "realtime": realtime})


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    """A uvicorn server of a new app for ``settings`` on a free port; its base URL."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def sign_up(base: str, email: str = "ada@example.com") -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base) as c:
        assert (
            await c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).status_code == 201
        tokens = (
            await c.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
        ).json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def change_password(base: str, tokens: dict[str, str], old: str, new: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        response = await c.post(
            "/api/v1/users/me/password",
            json={"current_password": old, "new_password": new},
            headers=bearer(tokens),
        )
    assert response.status_code == 204, response.text


async def read_events(
    response: httpx.Response, count: int, within: float = 10
) -> list[dict[str, str]]:
    """The next ``count`` SSE events (comments skipped) of a streaming response, or every
    event until the stream ends when it ends first."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with asyncio.timeout(within):
        async for line in response.aiter_lines():
            if not line:
                if current:
                    events.append(current)
                    current = {}
                    if len(events) == count:
                        return events
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    return events


async def test_sse_delivers_notices_and_replays_from_last_event_id(
    settings: Settings, ctx: AppContext
) -> None:
    async with serve(live_settings(settings)) as base:
        tokens = await sign_up(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:  # noqa: SIM117
            async with c.stream("GET", STREAM, headers=bearer(tokens)) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                await change_password(base, tokens, PASSWORD, NEW_PASSWORD)
                [first] = await read_events(response, 1)
        assert first["event"] == "notification"
        assert json.loads(first["data"])["title"] == "Your password was changed"

        # Two notices while disconnected, then a reconnect with Last-Event-ID.
        await change_password(base, tokens, NEW_PASSWORD, PASSWORD)
        await change_password(base, tokens, PASSWORD, NEW_PASSWORD)
        await asyncio.sleep(0.5)  # let the in-process dispatcher write them
        headers = {**bearer(tokens), "Last-Event-ID": first["id"]}
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:  # noqa: SIM117
            async with c.stream("GET", STREAM, headers=headers) as response:
                replayed = await read_events(response, 2)
        assert [e["event"] for e in replayed] == ["notification", "notification"]
        assert len({first["id"], *(e["id"] for e in replayed)}) == 3

        async with httpx.AsyncClient(base_url=base) as c:
            bad = await c.get(STREAM, headers={**bearer(tokens), "Last-Event-ID": "nonsense"})
        assert bad.status_code == 400
        assert bad.json()["code"] == "invalid_cursor"


async def test_sse_sends_heartbeats(settings: Settings, ctx: AppContext) -> None:
    async with serve(live_settings(settings)) as base:
        tokens = await sign_up(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:  # noqa: SIM117
            async with c.stream("GET", STREAM, headers=bearer(tokens)) as response:
                heartbeat = None
                async with asyncio.timeout(5):
                    async for line in response.aiter_lines():
                        if line.startswith(":"):
                            heartbeat = line  # a comment line: the heartbeat
                            break
    assert heartbeat is not None, "the stream ended without a heartbeat"


async def test_revoking_the_session_closes_its_stream_within_a_second(
    settings: Settings, ctx: AppContext
) -> None:
    async with serve(live_settings(settings)) as base:
        tokens = await sign_up(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:  # noqa: SIM117
            async with c.stream("GET", STREAM, headers=bearer(tokens)) as response:
                await asyncio.sleep(0.2)
                logout = await c.post("/api/v1/auth/logout", json={}, headers=bearer(tokens))
                assert logout.status_code == 204
                revoked_at = time.monotonic()
                # More than one event asked for: returns when the server ends the stream.
                events = await read_events(response, 2, within=1)
                closed_in = time.monotonic() - revoked_at
    assert [e["event"] for e in events] == ["revoked"]
    assert closed_in < 1.0


async def test_websocket_delivers_notices_with_either_authentication(
    settings: Settings, ctx: AppContext
) -> None:
    async with serve(live_settings(settings)) as base:
        tokens = await sign_up(base)
        url = base.replace("http://", "ws://") + "/api/v1/users/me/notifications/ws"
        protocols: Any = ["atrium.notifications.v1", f"bearer.{tokens['access_token']}"]
        async with websockets.connect(url, subprotocols=protocols) as ws:
            assert ws.subprotocol == "atrium.notifications.v1"
            assert json.loads(await ws.recv()) == {"type": "ready"}
            await change_password(base, tokens, PASSWORD, NEW_PASSWORD)
            message = await _next_notice(ws)
            assert message["notification"]["category"] == "security"

        async with websockets.connect(url) as ws:  # the token as the first message
            await ws.send(json.dumps({"type": "auth", "access_token": tokens["access_token"]}))
            assert json.loads(await ws.recv()) == {"type": "ready"}
            await change_password(base, tokens, NEW_PASSWORD, PASSWORD)
            assert (await _next_notice(ws))["type"] == "notification"

        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "access_token": "not-a-token"}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def _next_notice(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == "notification":
                return message


async def test_a_notice_made_on_node_a_reaches_a_stream_on_node_b(
    settings: Settings, ctx: AppContext, database: Database
) -> None:
    """Two app instances sharing PostgreSQL and Redis: the change and its dispatch happen
    on A, the stream is held on B."""
    if database.backend != "postgresql" or not REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (ATRIUM_TEST_DATABASE_URL, ATRIUM_TEST_REDIS_URL)")
    node_a = live_settings(settings)
    node_b = node_a.model_copy(
        update={"events": node_a.events.model_copy(update={"worker_in_api": False})}
    )
    async with serve(node_a) as a, serve(node_b) as b:
        tokens = await sign_up(a)
        async with httpx.AsyncClient(base_url=b, timeout=10) as c:  # noqa: SIM117
            async with c.stream("GET", STREAM, headers=bearer(tokens)) as response:
                assert response.status_code == 200
                await asyncio.sleep(0.2)
                await change_password(a, tokens, PASSWORD, NEW_PASSWORD)
                [event] = await read_events(response, 1)
    assert event["event"] == "notification"
