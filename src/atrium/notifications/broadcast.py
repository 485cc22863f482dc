"""Administrator broadcasts: one request, a notice in every targeted inbox within a minute.

**Batched fan-out in the worker, and on read** (docs/architecture.md, "Broadcasts"): the
request writes
one ``notification_broadcast`` row and a ``notification.broadcast`` event — two rows,
whatever the audience. The ``broadcasts`` consumer then writes the notices with
``INSERT … SELECT`` over the audience in account-id order, ``BROADCAST_BATCH`` accounts per
statement and transaction at first, then as many as about a quarter of the budget allows
(up to ``MAX_BATCH``), recording how far it got (``fanned_out_until``) in the same
transaction; no account row travels to Atrium. A delivery works for at most half its
budget, then asks to be called again at once (:class:`Reschedule`), so a worker that dies
loses at most one batch of progress and a redelivery resumes where the last commit left
off (and ``ON CONFLICT DO NOTHING`` on ``(user_id, source_id)`` makes a repeated batch
harmless). Meanwhile every read of an inbox (list, unread count, read-all, a stream's
replay, the pages' header) first writes that account's notice of any broadcast still in
progress (:func:`atrium.notifications.service.catch_up`), so a broadcast is visible to
every account as soon as it is recorded, whatever the audience's size.
"""

from __future__ import annotations

import functools
import time
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.audit.service import record
from atrium.config import Settings
from atrium.context import AppContext
from atrium.core.bus import Bus
from atrium.core.clock import Clock
from atrium.core.db import after_commit, unit_of_work
from atrium.core.leased_worker import HANDLE_BUDGET
from atrium.events.dispatcher import Consumer, EventEnvelope, Reschedule
from atrium.events.service import emit
from atrium.models import NotificationBroadcast
from atrium.notifications.realtime import BROADCAST
from atrium.notifications.repository import NotificationRepository
from atrium.notifications.schemas import BroadcastCreate, BroadcastRead
from atrium.rbac.exceptions import RoleNotFound
from atrium.rbac.repository import RoleRepository

log = structlog.get_logger(__name__)

NAME = "broadcasts"
BROADCAST_BATCH = 20_000
MAX_BATCH = 200_000


async def create_broadcast(
    db: AsyncSession, ctx: AppContext, actor_id: uuid.UUID, body: BroadcastCreate
) -> BroadcastRead:
    """Record a broadcast and the event that makes the worker fan it out.

    Raises:
        RoleNotFound: 404, ``audience`` is ``role`` and no role has that name.
    """
    role_id = None
    if body.audience == "role":
        assert body.role is not None
        role = await RoleRepository(db).get(body.role)
        if role is None:
            raise RoleNotFound(f"No role named {body.role!r}.")
        role_id = role.id
    now = ctx.clock.now()
    broadcast = NotificationBroadcast(
        id=uuid.uuid4(),
        audience=body.audience,
        role_id=role_id,
        category=body.category,
        title=body.title,
        body=body.body,
        link=body.link,
        actor_id=actor_id,
        created_at=now,
        fanned_out_until=None,
        completed_at=None,
    )
    await NotificationRepository(db).add_broadcast(broadcast)
    data = {"audience": body.audience, "role": body.role, "category": body.category}
    await emit(
        db, "notification.broadcast", subject=broadcast.id, actor=actor_id, data=data, at=now
    )
    await record(
        db,
        "notification.broadcast",
        at=now,
        actor_id=actor_id,
        target_type="broadcast",
        target_id=broadcast.id,
        details={**data, "title": body.title},
    )
    # Open streams catch up at once (fan-out on read); the worker writes the rest.
    after_commit(db, functools.partial(ctx.bus.publish, BROADCAST, b"created"))
    log.info("broadcast_created", broadcast_id=str(broadcast.id), audience=body.audience)
    return broadcast_read(broadcast, body.role)


def broadcast_read(broadcast: NotificationBroadcast, role: str | None) -> BroadcastRead:
    return BroadcastRead(
        id=broadcast.id,
        audience=broadcast.audience,
        role=role,
        category=broadcast.category,
        title=broadcast.title,
        body=broadcast.body,
        link=broadcast.link,
        created_at=broadcast.created_at,
        completed_at=broadcast.completed_at,
    )


async def fan_out(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    broadcast_id: uuid.UUID,
    *,
    bus: Bus | None = None,
    batch_size: int = BROADCAST_BATCH,
    budget_seconds: float = 30.0,
) -> bool:
    """Write the broadcast's notices batch by batch (one transaction each) for at most
    ``budget_seconds``; True once every account of the audience has it. ``batch_size`` is
    the first batch's; the next ones are sized from the rate measured (see the loop)."""
    started = time.monotonic()
    # Larger batches walk the account table and the inbox indexes fewer times (each batch
    # touches most of their pages): the size follows the measured rate so that one batch
    # takes about a quarter of the budget, between BROADCAST_BATCH and MAX_BATCH.
    target = max(1.0, budget_seconds / 4)
    while True:
        batch_started = time.monotonic()
        async with unit_of_work(sessionmaker) as db:
            repo = NotificationRepository(db)
            broadcast = await repo.get_broadcast(broadcast_id)
            if broadcast is None or broadcast.completed_at is not None:
                return True
            upper = await repo.fan_out_batch(broadcast, broadcast.created_at, batch_size)
            if upper is None:
                broadcast.completed_at = clock.now()
                log.info("broadcast_completed", broadcast_id=str(broadcast_id))
                if bus is not None:  # every open stream reads its new notices
                    after_commit(db, functools.partial(bus.publish, BROADCAST, b"done"))
                return True
            broadcast.fanned_out_until = upper
        took = max(1e-3, time.monotonic() - batch_started)
        batch_size = int(min(MAX_BATCH, max(BROADCAST_BATCH, batch_size * target / took)))
        if time.monotonic() - started > budget_seconds:
            return False


def broadcast_consumer(
    settings: Settings, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession], bus: Bus
) -> Consumer:
    """The consumer that fans broadcasts out (non-transactional: it commits per batch)."""
    budget = settings.events.lease_seconds * HANDLE_BUDGET / 2

    async def handle(event: EventEnvelope, db: AsyncSession | None) -> None:
        broadcast_id = uuid.UUID(event.subject_id)
        if not await fan_out(sessionmaker, clock, broadcast_id, bus=bus, budget_seconds=budget):
            raise Reschedule(0)

    return Consumer(NAME, ("notification.broadcast",), handle, transactional=False)
