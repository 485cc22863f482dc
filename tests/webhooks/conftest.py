"""A loopback webhook receiver (uvicorn on a free port) and settings that allow it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from atrium.config import Settings, WebhookSettings
from atrium.context import AppContext
from atrium.webhooks.worker import WebhookWorker


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int] | None = None  # the connection it came on (address, port)


@dataclass
class Receiver:
    """Records every request; answers with ``statuses`` in turn (then ``default``)."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default: int = 204
    answer_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    answer_body: bytes = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        client = scope.get("client")
        self.requests.append(
            Received(scope["path"], headers, body, tuple(client) if client else None)
        )
        status = self.statuses.pop(0) if self.statuses else self.default
        await send(
            {"type": "http.response.start", "status": status, "headers": self.answer_headers}
        )
        await send({"type": "http.response.body", "body": self.answer_body})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver(port=free_port())
    config = uvicorn.Config(
        recv, host="127.0.0.1", port=recv.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    yield recv
    server.should_exit = True
    await task


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with loopback receivers allowed (and nothing else private)."""
    return settings.model_copy(
        update={"webhooks": WebhookSettings(allow_loopback=True, poll_interval_seconds=0.05)}
    )


def worker(ctx: AppContext) -> WebhookWorker:
    return WebhookWorker(ctx.sessionmaker, ctx.settings, ctx.clock)
