"""Delivery to consumers: at least once, retried with backoff, one worker per delivery."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.config import Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.events.dispatcher import (
    Consumer,
    EventDispatcher,
    EventEnvelope,
    PermanentFailure,
    Reschedule,
    type_matches,
)
from atrium.events.repository import EventRepository
from atrium.events.service import emit
from atrium.models import DeliveryStatus, Event, EventDelivery
from tests.conftest import Database


class Recorder:
    """A consumer that records what it was handed, failing the first ``fail`` times."""

    def __init__(self, name: str, *types: str, fail: int = 0, transactional: bool = True):
        self.seen: list[EventEnvelope] = []
        self.fail = fail
        self.consumer = Consumer(name, types or ("*",), self.handle, transactional)

    async def handle(self, event: EventEnvelope, db: AsyncSession | None) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("receiver down")
        self.seen.append(event)


def dispatcher(ctx: AppContext, *consumers: Consumer, **events: Any) -> EventDispatcher:
    settings = ctx.settings.model_copy(
        update={"events": ctx.settings.events.model_copy(update=events)}
    )
    return EventDispatcher(ctx.sessionmaker, settings, ctx.clock, consumers)


async def emit_some(ctx: AppContext, n: int, type_: str = "user.restored") -> list[uuid.UUID]:
    async with unit_of_work(ctx.sessionmaker) as db:
        return [
            (await emit(db, type_, subject=uuid.uuid4(), at=ctx.clock.now())).id for _ in range(n)
        ]


async def deliveries(ctx: AppContext) -> list[EventDelivery]:
    async with ctx.sessionmaker() as db:
        return list((await db.execute(select(EventDelivery))).scalars())


def test_type_patterns() -> None:
    assert type_matches("*", "user.created")
    assert type_matches("user.*", "user.created")
    assert not type_matches("user.*", "users.created")
    assert not type_matches("user.created", "user.updated")


async def test_each_consumer_gets_the_events_of_its_types_once(ctx: AppContext) -> None:
    users, files, everything = (
        Recorder("users", "user.*"),
        Recorder("files", "file.*"),
        Recorder("all"),
    )
    [restored] = await emit_some(ctx, 1)
    async with unit_of_work(ctx.sessionmaker) as db:
        owner = uuid.uuid4()
        await emit(db, "file.deleted", subject=uuid.uuid4(), data={"owner_id": owner})
    worker = dispatcher(ctx, users.consumer, files.consumer, everything.consumer)

    assert await worker.drain() == 4
    assert await worker.drain() == 0

    assert [e.id for e in users.seen] == [restored]
    assert [e.type for e in files.seen] == ["file.deleted"]
    assert files.seen[0].data == {"owner_id": str(owner)}
    assert {e.type for e in everything.seen} == {"user.restored", "file.deleted"}
    assert {d.status for d in await deliveries(ctx)} == {DeliveryStatus.delivered}
    body = files.seen[0].as_dict()
    assert body["subject"]["type"] == "file"
    assert body["actor"] == {"type": "system", "id": None}


async def test_failures_are_retried_with_exponential_backoff(
    ctx: AppContext, clock: FrozenClock
) -> None:
    flaky = Recorder("flaky", fail=2, transactional=False)
    await emit_some(ctx, 1)
    worker = dispatcher(ctx, flaky.consumer, backoff_base_seconds=10, backoff_max_seconds=15)

    assert await worker.drain() == 1  # attempt 1 fails: next in 10 s
    [row] = await deliveries(ctx)
    assert row.status == DeliveryStatus.pending
    assert row.last_error == "ConnectionError: receiver down"
    assert row.next_attempt_at == clock.now() + timedelta(seconds=10)
    clock.advance(seconds=9)
    assert await worker.drain() == 0
    clock.advance(seconds=1)
    assert await worker.drain() == 1  # attempt 2 fails: next in min(20, 15) s
    [row] = await deliveries(ctx)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=15)
    clock.advance(seconds=15)
    assert await worker.drain() == 1

    [row] = await deliveries(ctx)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.delivered, 3, None)
    assert len(flaky.seen) == 1


async def test_delivery_fails_after_max_attempts_and_retry_failed_requeues_it(
    ctx: AppContext, clock: FrozenClock
) -> None:
    broken = Recorder("broken", fail=10)
    await emit_some(ctx, 1)
    worker = dispatcher(ctx, broken.consumer, max_attempts=2, backoff_base_seconds=1)
    await worker.drain()
    clock.advance(seconds=1)
    await worker.drain()
    [row] = await deliveries(ctx)
    assert (row.status, row.attempts) == (DeliveryStatus.failed, 2)

    async with unit_of_work(ctx.sessionmaker) as db:
        assert (await EventRepository(db).stats()).deliveries["broken"]["failed"] == 1
        assert await EventRepository(db).retry_failed(clock.now()) == 1
    broken.fail = 0
    assert await worker.drain() == 1
    assert len(broken.seen) == 1


async def test_permanent_failure_is_not_retried(ctx: AppContext) -> None:
    async def refuse(event: EventEnvelope, db: AsyncSession | None) -> None:
        raise PermanentFailure("cannot ever handle this")

    await emit_some(ctx, 1)
    await dispatcher(ctx, Consumer("refuser", ("*",), refuse)).drain()
    [row] = await deliveries(ctx)
    assert (row.status, row.attempts) == (DeliveryStatus.failed, 1)


async def test_transactional_consumer_writes_only_with_a_successful_delivery(
    ctx: AppContext, clock: FrozenClock
) -> None:
    calls = 0

    async def write_then_maybe_fail(event: EventEnvelope, db: AsyncSession | None) -> None:
        nonlocal calls
        calls += 1
        assert db is not None
        await emit(db, "user.updated", subject=event.subject_id, data={"fields": ["x"]})
        if calls == 1:
            raise ConnectionError("after writing")

    await emit_some(ctx, 1)
    worker = dispatcher(ctx, Consumer("writer", ("user.restored",), write_then_maybe_fail))
    await worker.drain()
    async with ctx.sessionmaker() as db:
        assert (await db.execute(select(Event).where(Event.type == "user.updated"))).all() == []
    clock.advance(seconds=60)
    await worker.drain()
    async with ctx.sessionmaker() as db:
        rows = (await db.execute(select(Event).where(Event.type == "user.updated"))).all()
    assert len(rows) == 1  # the first attempt's write was rolled back with it


async def test_delivery_of_a_crashed_worker_is_retried_after_its_lease(
    ctx: AppContext, clock: FrozenClock
) -> None:
    consumer = Recorder("c")
    await emit_some(ctx, 1)
    worker = dispatcher(ctx, consumer.consumer)
    lease = timedelta(seconds=ctx.settings.events.lease_seconds)
    async with unit_of_work(ctx.sessionmaker) as db:  # a worker claims, then dies
        await worker.prepare(db, clock.now())
        claimed = await EventRepository(db).claim(
            clock.now(), limit=10, lease_id=uuid.uuid4(), locked_until=clock.now() + lease
        )
    assert len(claimed) == 1

    assert await worker.drain() == 0
    clock.advance(seconds=lease.total_seconds())
    assert await worker.drain() == 1
    assert len(consumer.seen) == 1
    [row] = await deliveries(ctx)
    assert (row.status, row.attempts) == (DeliveryStatus.delivered, 2)


async def test_deliveries_of_an_unknown_consumer_wait_for_a_worker_that_has_it(
    ctx: AppContext,
) -> None:
    first, second = Recorder("first"), Recorder("second")
    await emit_some(ctx, 1)
    async with unit_of_work(ctx.sessionmaker) as db:  # fanned out by a node with both
        await dispatcher(ctx, first.consumer, second.consumer).prepare(db, ctx.clock.now())

    assert await dispatcher(ctx, first.consumer).drain() == 1
    assert len(first.seen) == 1
    statuses = {d.consumer: d.status for d in await deliveries(ctx)}
    assert statuses == {"first": DeliveryStatus.delivered, "second": DeliveryStatus.pending}
    assert await dispatcher(ctx, second.consumer).drain() == 1
    assert len(second.seen) == 1


async def test_a_commit_that_emits_wakes_the_running_dispatcher(ctx: AppContext) -> None:
    consumer = Recorder("c")
    worker = dispatcher(ctx, consumer.consumer, poll_interval_seconds=60)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)  # the first pass found nothing; now it sleeps 60 s
        await emit_some(ctx, 1)
        for _ in range(100):
            if consumer.seen:
                break
            await asyncio.sleep(0.02)
        assert len(consumer.seen) == 1
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=5)


async def test_without_consumers_events_are_marked_dispatched(ctx: AppContext) -> None:
    await emit_some(ctx, 3)
    assert await dispatcher(ctx).run_once() == 0
    async with unit_of_work(ctx.sessionmaker) as db:
        stats = await EventRepository(db).stats()
    assert (stats.undispatched, stats.deliveries) == (0, {})


async def test_two_workers_deliver_1000_events_exactly_once_per_consumer(
    ctx: AppContext, database: Database
) -> None:
    """PostgreSQL: concurrent fan-out and claims with FOR UPDATE SKIP LOCKED; SQLite:
    claims serialised by BEGIN IMMEDIATE (200 events there: the file lock makes it slow)."""
    n = 1000 if database.backend == "postgresql" else 200
    await emit_some(ctx, n)
    seen: Counter[tuple[str, uuid.UUID]] = Counter()

    def counting(name: str, transactional: bool) -> Consumer:
        async def handle(event: EventEnvelope, db: AsyncSession | None) -> None:
            seen[(name, event.id)] += 1
            await asyncio.sleep(0)  # let the other worker run

        return Consumer(name, ("user.*",), handle, transactional)

    consumers = [counting("inbox", True), counting("hook", False)]
    settings: Settings = ctx.settings.model_copy(
        update={"events": ctx.settings.events.model_copy(update={"batch_size": 50})}
    )
    engines = [create_engine(settings) for _ in range(2)]
    try:
        workers = [
            EventDispatcher(create_sessionmaker(e), settings, ctx.clock, consumers) for e in engines
        ]
        counts = await asyncio.gather(*(w.drain(max_passes=10_000) for w in workers))
    finally:
        for e in engines:
            await e.dispose()

    assert sum(counts) == 2 * n
    assert len(seen) == 2 * n
    assert set(seen.values()) == {1}
    rows = await deliveries(ctx)
    assert len(rows) == 2 * n
    assert {(r.status, r.attempts) for r in rows} == {(DeliveryStatus.delivered, 1)}
    if database.backend == "postgresql":
        assert all(n > 0 for n in counts), counts  # both workers took part


async def test_a_consumer_with_more_to_do_is_called_again_without_spending_attempts(
    ctx: AppContext,
) -> None:
    calls = 0

    async def in_parts(event: EventEnvelope, db: AsyncSession | None) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Reschedule(0)

    await emit_some(ctx, 1)
    worker = dispatcher(ctx, Consumer("parts", ("*",), in_parts, False), max_attempts=1)
    assert await worker.drain() == 3
    [row] = await deliveries(ctx)
    assert (row.status, row.attempts) == (DeliveryStatus.delivered, 1)


async def test_deliveries_of_a_batch_are_handled_concurrently_on_postgresql(
    ctx: AppContext, database: Database
) -> None:
    """``events.concurrency`` deliveries in flight at once, each in its own transaction
    (one at a time on SQLite, whose single writer would make them wait on each other);
    a failing one is retried without touching the others."""
    in_flight, most = 0, 0
    seen: list[uuid.UUID] = []

    async def slow(event: EventEnvelope, db: AsyncSession | None) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.05)
            if event.id == failing:
                raise ConnectionError("receiver down")
            seen.append(event.id)
        finally:
            in_flight -= 1

    ids = await emit_some(ctx, 12)
    failing = ids[5]
    worker = dispatcher(ctx, Consumer("slow", ("*",), slow), concurrency=3)

    assert await worker.drain() == 12

    assert most == (3 if database.backend == "postgresql" else 1)
    assert sorted(seen) == sorted(i for i in ids if i != failing)
    statuses = {d.event_id: (d.status, d.attempts) for d in await deliveries(ctx)}
    assert statuses.pop(failing) == (DeliveryStatus.pending, 1)
    assert set(statuses.values()) == {(DeliveryStatus.delivered, 1)}
