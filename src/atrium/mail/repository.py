"""Every query of the outbox: a :class:`atrium.core.leasing.LeaseQueue` over
``outbox_message`` (states pending, sending, sent, failed)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.leasing import LeaseQueue, LeaseStates
from atrium.models import OutboxMessage, OutboxStatus

OUTBOX_STATES = LeaseStates(
    pending=OutboxStatus.pending.value,
    claimed=OutboxStatus.sending.value,
    done=OutboxStatus.sent.value,
    failed=OutboxStatus.failed.value,
)


class OutboxRepository(LeaseQueue):
    def __init__(self, db: AsyncSession) -> None:
        super().__init__(db, OutboxMessage, OUTBOX_STATES)

    async def add(self, message: OutboxMessage) -> None:
        self.db.add(message)
        await self.db.flush()

    async def mark_sent(self, message_id: uuid.UUID, lease_id: uuid.UUID, now: datetime) -> bool:
        """Record a delivery; the context (which may hold a single-use link) is emptied.
        False when the lease was lost to another worker meanwhile."""
        return await self.mark_done(message_id, lease_id, sent_at=now, context={})
