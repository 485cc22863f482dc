"""Delivering events to consumers: at least once, retried with backoff, under a lease.

A **consumer** is a name, the event types it takes (catalogue names or patterns such as
``user.*`` or ``*``) and an async ``handle(event, db)``. Notifications, email notices,
live streams and webhooks are all consumers; register one by passing it to the
:class:`EventDispatcher` that every process builds from the same list
(:func:`atrium.workers.event_consumers`).

One pass of the dispatcher (a :class:`atrium.core.leasing.LeasedWorker`):

1. **Fan out** (in the claim transaction): events not yet dispatched, oldest first and
   ``FOR UPDATE SKIP LOCKED``, get one ``event_delivery`` row per consumer that takes their
   type, and are marked dispatched.
2. **Claim** due deliveries of the consumers this process knows, with a lease.
3. **Handle** them, ``events.concurrency`` at a time on PostgreSQL (one at a time on
   SQLite): a *transactional* consumer (the default) gets a session whose
   transaction also records the delivery as done, so its writes happen exactly when the
   delivery is recorded (an error or a lost lease rolls both back); a non-transactional
   one (HTTP calls: webhooks) gets ``None`` and the outcome is recorded after it returns.
   An exception schedules a retry at ``now + backoff`` (``events.backoff_*``);
   :class:`PermanentFailure`, or ``events.max_attempts`` attempts, marks it failed.

Consumers must be idempotent by ``event.id``: a delivery whose worker died mid-way is
handed over again when its lease expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from atrium.config import Settings
from atrium.core import metrics
from atrium.core.clock import Clock
from atrium.core.db import is_sqlite, unit_of_work
from atrium.core.leased_worker import HANDLE_BUDGET, LeasedWorker
from atrium.events.repository import EventRepository
from atrium.events.service import on_emit
from atrium.models import Event, EventDelivery

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EventEnvelope:
    """An event as consumers see it. :meth:`as_dict` is its JSON form (webhook bodies,
    streams): ``{"id", "type", "version", "occurred_at", "actor": {"type", "id"},
    "subject": {"type", "id"}, "data"}``."""

    id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    subject_type: str
    subject_id: str
    data: dict[str, Any]
    request_id: str | None = None

    @classmethod
    def from_row(cls, row: Event) -> EventEnvelope:
        return cls(
            id=row.id,
            type=row.type,
            version=row.version,
            occurred_at=row.occurred_at,
            actor_type=row.actor_type,
            actor_id=row.actor_id,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            data=dict(row.data),
            request_id=row.request_id,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": {
                "type": self.actor_type,
                "id": str(self.actor_id) if self.actor_id else None,
            },
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "data": self.data,
        }


Handler = Callable[[EventEnvelope, AsyncSession | None], Awaitable[None]]


class PermanentFailure(Exception):
    """Raised by a consumer for an event it can never handle: no further attempt."""


class Reschedule(Exception):
    """Raised by a consumer that made progress and has more to do (a long fan-out in
    batches): the delivery is attempted again after ``delay_seconds``, and this attempt
    does not count towards ``events.max_attempts``. Anything it wrote must already be
    committed (a non-transactional consumer) or is rolled back."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        super().__init__(f"more to do in {delay_seconds:g} s")
        self.delay_seconds = delay_seconds


def type_matches(pattern: str, type_: str) -> bool:
    """``*`` takes every type, ``user.*`` every ``user.…`` type, else an exact name."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return type_.startswith(pattern[:-1])
    return pattern == type_


@dataclass(frozen=True)
class Consumer:
    """A registered consumer. ``name`` is stored with each delivery (at most 64
    characters, stable across releases); ``types`` are catalogue names or patterns."""

    name: str
    types: tuple[str, ...]
    handle: Handler
    transactional: bool = True

    def accepts(self, type_: str) -> bool:
        return any(type_matches(p, type_) for p in self.types)


class EventDispatcher(LeasedWorker):
    """Fans events out to ``consumers`` and delivers them; many may run on one database.

    Raises:
        ValueError: two consumers share a name, or a name is longer than 64 characters.
    """

    name = "events"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        consumers: Iterable[Consumer],
    ) -> None:
        ev = settings.events
        super().__init__(
            sessionmaker,
            clock,
            lease_seconds=ev.lease_seconds,
            batch_size=ev.batch_size,
            poll_interval_seconds=ev.poll_interval_seconds,
            max_attempts=ev.max_attempts,
            # SQLite has one writer: concurrent transactions would only wait on each other
            # (or fail on a lock upgrade), so one delivery at a time there.
            concurrency=1 if is_sqlite(settings.database_url) else ev.concurrency,
        )
        self.settings = ev
        self.consumers: dict[str, Consumer] = {}
        for consumer in consumers:
            if consumer.name in self.consumers or len(consumer.name) > 64:
                raise ValueError(f"consumer name {consumer.name!r} is taken or too long")
            self.consumers[consumer.name] = consumer
        self._events: dict[uuid.UUID, Event] = {}

    def queue(self, db: AsyncSession) -> EventRepository:
        return EventRepository(db)

    def consumers_of(self, type_: str) -> list[str]:
        """Names of the consumers that take ``type_``."""
        return [c.name for c in self.consumers.values() if c.accepts(type_)]

    async def prepare(self, db: AsyncSession, now: datetime) -> None:
        await EventRepository(db).fan_out(
            now, limit=self.batch_size, consumers_of=self.consumers_of
        )

    async def run_once(self) -> int:
        if not self.consumers:
            # Nothing to deliver to; events still get dispatched (marked, no rows).
            async with unit_of_work(self.sessionmaker) as db:
                await self.prepare(db, self.clock.now())
            return 0
        return await super().run_once()

    def claim_where(self) -> ColumnElement[bool]:
        # Deliveries of a consumer this process lacks wait for a worker that has it.
        return EventDelivery.consumer.in_(list(self.consumers))

    async def claimed(self, rows: Sequence[EventDelivery]) -> None:
        async with self.sessionmaker() as db:
            self._events = await EventRepository(db).events_by_id(r.event_id for r in rows)

    async def run(self) -> None:
        """:meth:`LeasedWorker.run`, woken by every commit that emits in this process."""
        unregister = on_emit(self.wake)
        try:
            await super().run()
        finally:
            unregister()

    async def handle_group(self, rows: Sequence[EventDelivery], lease_id: uuid.UUID) -> None:
        """Up to ``events.concurrency`` deliveries at once, each in its own transaction
        (:meth:`handle` records every outcome itself, so one delivery's failure never
        touches another's). Consumers are idempotent by event id and never rely on the
        order of deliveries (the claim hands them out oldest first, not in sequence)."""
        if len(rows) == 1:
            await self.handle(rows[0], lease_id)
            return
        async with anyio.create_task_group() as tg:
            for row in rows:
                tg.start_soon(self.handle, row, lease_id)

    async def handle(self, row: EventDelivery, lease_id: uuid.UUID) -> None:
        consumer = self.consumers[row.consumer]
        event = self._events.get(row.event_id)
        if event is None:  # deleted by retention meanwhile
            await self._record(row, lease_id, PermanentFailure("event no longer exists"))
            return
        envelope = EventEnvelope.from_row(event)
        error: BaseException | None = None
        try:
            with anyio.fail_after(self.lease_seconds * HANDLE_BUDGET):
                if consumer.transactional:
                    async with unit_of_work(self.sessionmaker) as db:
                        await consumer.handle(envelope, db)
                        if not await self._done(db, row, lease_id):
                            raise _LeaseLost
                    metrics.EVENT_DELIVERIES.labels(consumer.name, "delivered").inc()
                    return
                await consumer.handle(envelope, None)
        except _LeaseLost:
            log.warning("events_lease_lost", delivery_id=str(row.id))
            return
        except Reschedule as again:
            await self._reschedule(row, lease_id, again.delay_seconds)
            return
        except TimeoutError:
            error = TimeoutError(f"not handled within {self.lease_seconds * HANDLE_BUDGET:g} s")
        except Exception as exc:  # noqa: BLE001 - a consumer's failure is the delivery's
            error = exc
        await self._record(row, lease_id, error)

    async def _done(self, db: AsyncSession, row: EventDelivery, lease_id: uuid.UUID) -> bool:
        return await EventRepository(db).mark_done(row.id, lease_id, delivered_at=self.clock.now())

    async def _reschedule(self, row: EventDelivery, lease_id: uuid.UUID, delay: float) -> None:
        at = self.clock.now() + timedelta(seconds=delay)
        async with unit_of_work(self.sessionmaker) as db:
            kept = await EventRepository(db).reschedule(row.id, lease_id, at)
        metrics.EVENT_DELIVERIES.labels(row.consumer, "rescheduled").inc()
        if not kept:
            log.warning("events_lease_lost", delivery_id=str(row.id))

    async def _record(
        self, row: EventDelivery, lease_id: uuid.UUID, error: BaseException | None
    ) -> None:
        now = self.clock.now()
        async with unit_of_work(self.sessionmaker) as db:
            if error is None:
                kept = await self._done(db, row, lease_id)
                outcome = "delivered"
            else:
                give_up = isinstance(error, PermanentFailure) or row.attempts >= self.max_attempts
                next_at = None
                if not give_up:
                    next_at = self.next_attempt(
                        row.attempts,
                        now,
                        base=self.settings.backoff_base_seconds,
                        maximum=self.settings.backoff_max_seconds,
                    )
                kept = await EventRepository(db).mark_attempt_failed(
                    row.id,
                    lease_id,
                    error=f"{type(error).__name__}: {error}",
                    next_attempt_at=next_at,
                )
                outcome = "failed" if give_up else "retry"
                log.warning(
                    "event_delivery_failed",
                    delivery_id=str(row.id),
                    consumer=row.consumer,
                    attempts=row.attempts,
                    gave_up=give_up,
                    error=f"{type(error).__name__}: {error}",
                )
        metrics.EVENT_DELIVERIES.labels(row.consumer, outcome).inc()
        if not kept:
            log.warning("events_lease_lost", delivery_id=str(row.id))


class _LeaseLost(Exception):
    pass
