"""Every query of events and their deliveries (a :class:`LeaseQueue` over
``event_delivery``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.leasing import LeaseQueue, LeaseStates
from atrium.models import DeliveryStatus, Event, EventDelivery

DELIVERY_STATES = LeaseStates(
    pending=DeliveryStatus.pending.value,
    claimed=DeliveryStatus.delivering.value,
    done=DeliveryStatus.delivered.value,
    failed=DeliveryStatus.failed.value,
)


@dataclass(frozen=True)
class EventStats:
    """The dispatch backlog: events not yet fanned out, deliveries per consumer and state,
    and when the longest-waiting work became due (``None`` when nothing waits)."""

    undispatched: int
    oldest_undispatched_at: datetime | None
    deliveries: dict[str, dict[str, int]]
    oldest_pending_due_at: datetime | None


class EventRepository(LeaseQueue):
    def __init__(self, db: AsyncSession) -> None:
        super().__init__(db, EventDelivery, DELIVERY_STATES)

    async def fan_out(
        self, now: datetime, *, limit: int, consumers_of: Callable[[str], Iterable[str]]
    ) -> int:
        """Write one pending delivery per (event, consumer that takes its type) for up to
        ``limit`` events not yet dispatched (oldest first), and mark them dispatched; the
        number of events. ``FOR UPDATE SKIP LOCKED``: concurrent dispatchers fan out
        disjoint events (and ``uq_event_delivery_event_id_consumer`` backs that up)."""
        rows = (
            await self.db.execute(
                select(Event.id, Event.type)
                .where(Event.dispatched_at.is_(None))
                .order_by(Event.occurred_at, Event.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return 0
        deliveries = [
            {
                "id": uuid.uuid4(),
                "event_id": event_id,
                "consumer": consumer,
                "status": DeliveryStatus.pending.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for event_id, type_ in rows
            for consumer in consumers_of(type_)
        ]
        if deliveries:
            await self.db.execute(insert(EventDelivery), deliveries)
        await self.db.execute(
            update(Event)
            .where(Event.id.in_([r[0] for r in rows]))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
        return len(rows)

    async def events_by_id(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Event]:
        result = await self.db.execute(select(Event).where(Event.id.in_(set(ids))))
        return {e.id: e for e in result.scalars()}

    async def stats(self) -> EventStats:
        """The numbers of ``atrium events status`` and ``/metrics``."""
        undispatched, oldest_event = (
            await self.db.execute(
                select(func.count(), func.min(Event.occurred_at)).where(
                    Event.dispatched_at.is_(None)
                )
            )
        ).one()
        deliveries: dict[str, dict[str, int]] = {}
        rows = await self.db.execute(
            select(EventDelivery.consumer, EventDelivery.status, func.count()).group_by(
                EventDelivery.consumer, EventDelivery.status
            )
        )
        for consumer, status, count in rows:
            per = deliveries.setdefault(consumer, dict.fromkeys(DELIVERY_STATES.all(), 0))
            per[status] = count
        return EventStats(
            undispatched=undispatched,
            oldest_undispatched_at=oldest_event,
            deliveries=deliveries,
            oldest_pending_due_at=await self.oldest_pending_due_at(),
        )

    async def prune(self, dispatched_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events dispatched before ``dispatched_before`` whose every
        delivery was delivered (their deliveries go by cascade); how many. Events with a
        pending or failed delivery stay, whatever their age."""
        unfinished = (
            select(EventDelivery.id)
            .where(
                EventDelivery.event_id == Event.id,
                EventDelivery.status != DeliveryStatus.delivered.value,
            )
            .exists()
        )
        ids = (
            select(Event.id)
            .where(Event.dispatched_at < dispatched_before, ~unfinished)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self.db.execute(delete(Event).where(Event.id.in_(ids)).returning(Event.id))
        return len(result.all())
