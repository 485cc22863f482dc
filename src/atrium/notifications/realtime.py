"""Live notices: what the streams of one account receive, on any node.

The ``notifications`` consumer publishes each new notice on the bus
(:mod:`atrium.core.bus`, topic ``user:<id>``) once its transaction has committed; a
committed ``session.revoked`` event publishes ``session:<id>`` from the process that
revoked it (no dispatcher in between, so a stream closes within a second); a broadcast
publishes ``broadcast`` when it is recorded and again when its fan-out is finished, upon
which each open stream catches up (fan-out on read:
:func:`atrium.notifications.service.catch_up`) and reads its new notices from the
database (after a random delay of up to ``realtime.broadcast_jitter_seconds``,
so that 10,000 streams do not query at the same instant).

A stream's position is the notice's ``(created_at, id)`` encoded as the inbox cursor; it
is the SSE ``id:`` and the ``Last-Event-ID`` a client reconnects with (WHATWG HTML,
"Server-sent events"): the notices after it are replayed from the database first.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.bus import OVERFLOW, Bus
from atrium.core.db import after_commit, unit_of_work
from atrium.events.service import on_committed
from atrium.models import Event, Notification
from atrium.notifications.repository import NotificationRepository
from atrium.notifications.schemas import NotificationRead
from atrium.notifications.service import NOTIFICATION_CURSOR, catch_up, hidden_categories

BROADCAST = "broadcast"
REPLAY_LIMIT = 500


def user_topic(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


def session_topic(session_id: uuid.UUID | str) -> str:
    return f"session:{session_id}"


def stream_id(created_at: datetime, notification_id: uuid.UUID) -> str:
    """The position of a notice in its account's stream (the SSE ``id:``)."""
    return NOTIFICATION_CURSOR.encode({"t": created_at, "id": notification_id})


def parse_stream_id(value: str) -> tuple[datetime, uuid.UUID]:
    """The position in a ``Last-Event-ID``.

    Raises:
        InvalidCursor: 400, not an id this stream sent.
    """
    position = NOTIFICATION_CURSOR.decode(value)
    return position["t"], position["id"]


def message(read: NotificationRead) -> bytes:
    """The bus message (and stream payload) of a notice."""
    body = read.model_dump(mode="json")
    body["stream_id"] = stream_id(read.created_at, read.id)
    return json.dumps(body, separators=(",", ":")).encode()


def publish_on_commit(
    db: AsyncSession, bus: Bus, user_id: uuid.UUID, read: NotificationRead
) -> None:
    """Announce ``read`` to ``user_id``'s streams once ``db`` commits."""

    async def publish() -> None:
        await bus.publish(user_topic(user_id), message(read))

    after_commit(db, publish)


def install_revocation_relay(bus: Bus) -> Callable[[], None]:
    """Publish ``session:<id>`` for every ``session.revoked`` event this process commits;
    returns the function that stops it (at shutdown)."""

    async def relay(events: list[Event]) -> None:
        for event in events:
            await bus.publish(session_topic(event.subject_id), b"revoked")

    return on_committed("session.revoked", relay)


@dataclass(frozen=True)
class Live:
    """One item of a stream: ``kind`` is ``notification`` (``id`` and ``data`` set) or
    ``revoked`` (the session ended: the stream closes) or ``overflow`` (too far behind:
    the stream closes and its client reconnects with ``Last-Event-ID``)."""

    kind: str
    id: str = ""
    data: str = ""


async def live_notices(
    ctx: AppContext, user_id: uuid.UUID, session_id: uuid.UUID, last_event_id: str | None
) -> AsyncIterator[Live]:
    """The notices of ``user_id`` after ``last_event_id`` (replayed), then as they come."""
    settings = ctx.settings.realtime
    topics = (user_topic(user_id), session_topic(session_id), BROADCAST)
    async with ctx.bus.subscribe(*topics) as sub:
        metrics.REALTIME_STREAMS.inc()
        try:
            position = parse_stream_id(last_event_id) if last_event_id else None
            seen: deque[str] = deque(maxlen=REPLAY_LIMIT)  # live and replayed may overlap
            async with ctx.sessionmaker() as db:
                hidden = await hidden_categories(db, user_id)
            if position is not None:
                for item in await _replay(ctx, user_id, position, hidden):
                    seen.append(item.id)
                    position = _position(item)
                    yield item
            else:
                position = (ctx.clock.now(), uuid.UUID(int=0))
            while True:
                msg = await sub.get()
                if msg is OVERFLOW:
                    yield Live("overflow")
                    return
                if msg.topic == topics[1]:
                    yield Live("revoked")
                    return
                if msg.topic == BROADCAST:
                    await asyncio.sleep(random.uniform(0, settings.broadcast_jitter_seconds))  # noqa: S311  # nosec B311 - jitter, not a secret
                    for item in await _replay(ctx, user_id, position, hidden):
                        if item.id not in seen:
                            seen.append(item.id)
                            position = max(position, _position(item))
                            yield item
                    continue
                live = _from_message(msg.data)
                if live is not None and live.id not in seen:
                    seen.append(live.id)
                    position = max(position, _position(live))
                    yield live
        finally:
            metrics.REALTIME_STREAMS.dec()


def _from_message(data: bytes) -> Live | None:
    try:
        body: dict[str, Any] = json.loads(data)
        sid = str(body.pop("stream_id"))
    except (ValueError, KeyError):
        return None
    return Live("notification", sid, json.dumps(body, separators=(",", ":")))


def _position(item: Live) -> tuple[datetime, uuid.UUID]:
    return parse_stream_id(item.id)


async def _replay(
    ctx: AppContext, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID], hidden: set[str]
) -> list[Live]:
    async with unit_of_work(ctx.sessionmaker) as db:
        await catch_up(db, user_id)  # broadcasts the worker has not brought here yet
    async with ctx.sessionmaker() as db:
        rows = await NotificationRepository(db).since(user_id, after, REPLAY_LIMIT)
    return [_item(row) for row in rows if row.category not in hidden]


def _item(row: Notification) -> Live:
    read = NotificationRead.model_validate(row)
    return Live(
        "notification",
        stream_id(row.created_at, row.id),
        read.model_dump_json(),
    )
