"""Every query of webhook endpoints, their deliveries (a :class:`LeaseQueue` over
``webhook_delivery``) and the delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.leasing import LeaseQueue, LeaseStates
from atrium.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

DELIVERY_STATES = LeaseStates(
    pending="pending", claimed="delivering", done="delivered", failed="failed"
)


class WebhookRepository(LeaseQueue):
    def __init__(self, db: AsyncSession) -> None:
        super().__init__(db, WebhookDelivery, DELIVERY_STATES)

    # Endpoints
    async def endpoint(
        self, endpoint_id: uuid.UUID, *, lock: bool = False
    ) -> WebhookEndpoint | None:
        query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        if lock:
            query = query.with_for_update()
        return (await self.db.execute(query)).scalar_one_or_none()

    async def endpoints(self) -> list[WebhookEndpoint]:
        query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        return list((await self.db.execute(query)).scalars())

    async def enabled_endpoints(self) -> list[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
        return list((await self.db.execute(query)).scalars())

    async def count_endpoints(self) -> int:
        return int(
            (await self.db.execute(select(func.count()).select_from(WebhookEndpoint))).scalar_one()
        )

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> None:
        # Explicit, so SQLite without foreign-key enforcement leaves no orphan either.
        deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id)
        await self.db.execute(
            delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries))
        )
        await self.db.execute(
            delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        await self.db.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))

    # Deliveries
    async def queue_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert pending deliveries (``endpoint_id``, ``event_id``, ``event_type``,
        ``payload``, ``now``); one already queued for its (endpoint, event) is skipped."""
        for row in rows:
            exists = await self.db.execute(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.endpoint_id == row["endpoint_id"],
                    WebhookDelivery.event_id == row["event_id"],
                )
            )
            if exists.first() is not None:
                continue
            self.db.add(
                WebhookDelivery(
                    id=uuid.uuid4(),
                    endpoint_id=row["endpoint_id"],
                    event_id=row["event_id"],
                    event_type=row["event_type"],
                    payload=row["payload"],
                    status=DELIVERY_STATES.pending,
                    attempts=0,
                    next_attempt_at=row["now"],
                    created_at=row["now"],
                )
            )
        await self.db.flush()

    async def delivery(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
        return (await self.db.execute(query)).scalar_one_or_none()

    async def deliveries(
        self, endpoint_id: uuid.UUID, *, limit: int, before: datetime | None
    ) -> list[WebhookDelivery]:
        """Deliveries of an endpoint, newest first, created before ``before``."""
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(WebhookDelivery.created_at < before)
        query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        return list((await self.db.execute(query.limit(limit))).scalars())

    async def attempts_of(
        self, delivery_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[WebhookAttempt]]:
        ids = list(delivery_ids)
        out: dict[uuid.UUID, list[WebhookAttempt]] = {i: [] for i in ids}
        if not ids:
            return out
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.attempt, WebhookAttempt.attempted_at)
        )
        for attempt in (await self.db.execute(query)).scalars():
            out[attempt.delivery_id].append(attempt)
        return out

    async def add_attempt(self, attempt: WebhookAttempt) -> None:
        self.db.add(attempt)
        await self.db.flush()

    async def requeue(self, delivery_id: uuid.UUID, now: datetime) -> bool:
        """A delivered or failed delivery pending again, due now, with a fresh budget."""
        result = await self.db.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status.in_([DELIVERY_STATES.done, DELIVERY_STATES.failed]),
            )
            .values(status=DELIVERY_STATES.pending, attempts=0, next_attempt_at=now)
            .returning(WebhookDelivery.id)
        )
        return result.first() is not None

    async def record_failure(self, endpoint_id: uuid.UUID) -> int:
        """Count one more delivery that failed for good; the new count."""
        result = await self.db.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
            .returning(WebhookEndpoint.consecutive_failures)
        )
        return int(result.scalar_one_or_none() or 0)

    async def record_success(self, endpoint_id: uuid.UUID) -> None:
        await self.db.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.consecutive_failures > 0)
            .values(consecutive_failures=0)
        )

    async def disable(self, endpoint_id: uuid.UUID, now: datetime, reason: str) -> bool:
        """Disable an enabled endpoint; False when it already was disabled."""
        result = await self.db.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_at=now, disabled_reason=reason[:200], updated_at=now)
            .returning(WebhookEndpoint.id)
        )
        return result.first() is not None

    async def disabled_count(self) -> int:
        query = (
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.enabled.is_(False), WebhookEndpoint.disabled_reason.is_not(None))
        )
        return int((await self.db.execute(query)).scalar_one())

    async def delivery_of_event(
        self, endpoint_id: uuid.UUID, event_id: uuid.UUID
    ) -> WebhookDelivery:
        query = select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.event_id == event_id
        )
        return (await self.db.execute(query)).scalar_one()
