"""Every query of the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import OutboxMessage, OutboxStatus


class OutboxRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, message: OutboxMessage) -> None:
        self.db.add(message)
        await self.db.flush()

    async def fail_expired_last_attempts(self, now: datetime, max_attempts: int) -> int:
        """Rows whose worker died during their last allowed attempt become ``failed``."""
        result = await self.db.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.sending.value,
                OutboxMessage.locked_until <= now,
                OutboxMessage.attempts >= max_attempts,
            )
            .values(
                status=OutboxStatus.failed.value,
                locked_until=None,
                lease_id=None,
                last_error="worker lease expired during the last attempt",
            )
            .returning(OutboxMessage.id)
        )
        return len(result.all())

    async def claim(
        self, now: datetime, *, limit: int, lease_id: uuid.UUID, locked_until: datetime
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` due rows for one worker: pending rows whose time has come
        and rows whose previous worker's lease ran out (it crashed or hung).

        PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` locks the chosen rows and makes
        concurrent workers skip them rather than wait, then the rows are marked
        ``sending`` with a lease before the transaction commits; after the commit, other
        workers see the lease and leave them alone until ``locked_until``. SQLite ignores
        ``FOR UPDATE``; its ``BEGIN IMMEDIATE`` transactions serialise claims instead.
        """
        due = or_(
            and_(
                OutboxMessage.status == OutboxStatus.pending.value,
                OutboxMessage.next_attempt_at <= now,
            ),
            and_(
                OutboxMessage.status == OutboxStatus.sending.value,
                OutboxMessage.locked_until <= now,
            ),
        )
        ids = list(
            (
                await self.db.execute(
                    select(OutboxMessage.id)
                    .where(due)
                    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            return []
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(
                status=OutboxStatus.sending.value,
                attempts=OutboxMessage.attempts + 1,
                locked_until=locked_until,
                lease_id=lease_id,
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        rows = list(result.scalars())
        rows.sort(key=lambda m: (m.next_attempt_at, m.id))
        return rows

    async def mark_sent(self, message_id: uuid.UUID, lease_id: uuid.UUID, now: datetime) -> bool:
        """Record a delivery; the context (which may hold a single-use link) is emptied.
        False when the lease was lost to another worker meanwhile."""
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.lease_id == lease_id)
            .values(
                status=OutboxStatus.sent.value,
                sent_at=now,
                context={},
                locked_until=None,
                lease_id=None,
                last_error=None,
            )
            .returning(OutboxMessage.id)
        )
        return result.first() is not None

    async def mark_attempt_failed(
        self,
        message_id: uuid.UUID,
        lease_id: uuid.UUID,
        *,
        error: str,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Schedule the next attempt, or mark the row ``failed`` when ``next_attempt_at``
        is None. False when the lease was lost to another worker meanwhile."""
        values: dict[str, object] = {
            "locked_until": None,
            "lease_id": None,
            "last_error": error[:1000],
        }
        if next_attempt_at is None:
            values["status"] = OutboxStatus.failed.value
        else:
            values["status"] = OutboxStatus.pending.value
            values["next_attempt_at"] = next_attempt_at
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.lease_id == lease_id)
            .values(**values)
            .returning(OutboxMessage.id)
        )
        return result.first() is not None

    async def counts_by_status(self) -> dict[str, int]:
        rows = await self.db.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        counts = {s.value: 0 for s in OutboxStatus}
        counts.update({status: n for status, n in rows})
        return counts

    async def retry_failed(self, now: datetime) -> int:
        """Put every ``failed`` row back in line with a fresh attempt budget."""
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.failed.value)
            .values(status=OutboxStatus.pending.value, attempts=0, next_attempt_at=now)
            .returning(OutboxMessage.id)
        )
        return len(result.all())
