"""A publish/subscribe bus for live messages between nodes: Redis pub/sub in production,
in-process in the embedded default.

Messages are small hints for open streams ("a notification for user U", "session S was
revoked"); they are not stored, and a subscriber that misses one catches up from the
database (a stream replays from its ``Last-Event-ID``). Each node holds **one** Redis
connection subscribed to ``<prefix>bus:*`` and fans messages out to its local subscribers
by topic, so 10,000 open streams cost one Redis connection, not 10,000.

A subscriber's queue is bounded (``QUEUE_SIZE``); a subscriber that falls that far behind
is sent :data:`OVERFLOW` and should close (its client reconnects and replays).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

QUEUE_SIZE = 256


@dataclass(frozen=True)
class Message:
    topic: str
    data: bytes


OVERFLOW = Message("", b"overflow")


class Subscription:
    """The messages of some topics for one local subscriber (iterate with :meth:`get`)."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self.queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOW)

    async def get(self) -> Message:
        return await self.queue.get()


class Bus(Protocol):
    async def publish(self, topic: str, data: bytes) -> None:
        """Send ``data`` to every subscriber of ``topic`` on every node (best effort)."""
        ...

    def subscribe(self, *topics: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """A subscription to ``topics`` for the duration of the ``async with``."""
        ...

    async def close(self) -> None: ...


class LocalFanout:
    """The subscribers of this node, by topic."""

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscription]] = {}

    def deliver(self, message: Message) -> None:
        for sub in list(self._by_topic.get(message.topic, ())):
            sub.offer(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        sub = Subscription(topics)
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)
        try:
            yield sub
        finally:
            for topic in sub.topics:
                subs = self._by_topic.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_topic[topic]

    @property
    def subscribers(self) -> int:
        return len({s for subs in self._by_topic.values() for s in subs})


class MemoryBus(LocalFanout):
    """One process (the embedded default): publishing delivers to the local subscribers."""

    async def publish(self, topic: str, data: bytes) -> None:
        self.deliver(Message(topic, data))

    async def close(self) -> None:
        return None


class RedisBus(LocalFanout):
    """Redis pub/sub (``PUBLISH``/``PSUBSCRIBE``): one listening connection per node,
    opened on the first subscription and re-opened after a Redis outage."""

    def __init__(self, url: str, prefix: str, socket_timeout: float) -> None:
        super().__init__()
        from redis import asyncio as aioredis

        from atrium.core.cache import redis_driver_info

        self._redis: Any = aioredis.from_url(
            url, socket_timeout=socket_timeout, driver_info=redis_driver_info()
        )
        # Blocking reads: no time-out.
        self._listener_redis: Any = aioredis.from_url(url, driver_info=redis_driver_info())
        self._channel_prefix = f"{prefix}bus:"
        self._task: asyncio.Task[None] | None = None

    async def publish(self, topic: str, data: bytes) -> None:
        try:
            await self._redis.publish(self._channel_prefix + topic, data)
        except Exception as exc:  # noqa: BLE001 - a live hint; streams catch up on reconnect
            log.warning("bus_publish_failed", topic=topic.partition(":")[0], error=str(exc))

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        await self.ready()
        async with super().subscribe(*topics) as sub:
            yield sub

    async def ready(self) -> None:
        """Start listening (once per node) and wait until the subscription is active, so
        nothing published after this returns is missed."""
        if self._task is None or self._task.done():
            started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._listen(started), name="atrium-bus")
            await started

    async def _listen(self, started: asyncio.Future[None]) -> None:
        strip = len(self._channel_prefix)
        while True:
            try:
                async with self._listener_redis.pubsub() as pubsub:
                    await pubsub.psubscribe(self._channel_prefix + "*")
                    if not started.done():
                        started.set_result(None)
                    async for raw in pubsub.listen():
                        if raw.get("type") != "pmessage":
                            continue
                        channel = raw["channel"]
                        topic = (channel.decode() if isinstance(channel, bytes) else channel)[
                            strip:
                        ]
                        self.deliver(Message(topic, raw["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: retry
                log.warning("bus_listener_failed", error=str(exc))
                if not started.done():
                    started.set_exception(exc)
                    return
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._redis.aclose()
        await self._listener_redis.aclose()


def create_bus(url: str | None, prefix: str, socket_timeout: float) -> MemoryBus | RedisBus:
    """Redis pub/sub when ``url`` is set (``ATRIUM_REDIS__URL``), else in-process."""
    if url:
        return RedisBus(url, prefix, socket_timeout)
    return MemoryBus()
