"""Leased work queues: the one mechanism behind the email outbox and event deliveries.

A queue is a table whose rows carry ``status``, ``attempts``, ``next_attempt_at``,
``locked_until``, ``lease_id`` and ``last_error``. Four states, named per table
(:class:`LeaseStates`): *pending* (due at ``next_attempt_at``), *claimed* (held by a
worker until ``locked_until``), *done* and *failed* (gave up; an operator may requeue).

:class:`LeaseQueue` holds every query; :class:`atrium.core.leased_worker.LeasedWorker` is
the polling loop built on it. One pass (``LeasedWorker.run_once``):

1. **Claim** (one short transaction): up to ``batch_size`` due rows — pending rows whose
   time has come and claimed rows whose lease ran out — selected with ``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL and marked claimed with a lease (``locked_until = now +
   lease_seconds``, a fresh ``lease_id``), ``attempts`` counted up. Concurrent workers skip
   locked rows instead of waiting and after the commit see the lease, so no row is handled
   by two workers at once. SQLite's ``BEGIN IMMEDIATE`` transactions serialise claims.
2. **Renew, then handle** each row outside the claim transaction. Before a row, when less
   than one row's budget (``HANDLE_BUDGET`` of the lease) is left, the lease of every row
   still held is renewed (one ``UPDATE … WHERE lease_id = ?``), so a slow batch keeps its
   rows; a row that is no longer ours is skipped.
3. **Record** each outcome only while the lease is ours (``WHERE lease_id = ?``): done, or
   pending again at ``now + backoff``, or failed after ``max_attempts``.

A worker that dies between 1 and 3 leaves its rows claimed; when the lease expires another
worker claims them again (delivery is at least once). A stopping worker finishes the row in
flight and gives back the rest of its batch at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement


def backoff_seconds(attempts: int, *, base: float, maximum: float) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: ``base · 2^(n-1)``,
    capped at ``maximum`` (30 s, 1 min, 2 min, … 1 h with the mail defaults)."""
    return float(min(maximum, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class LeaseStates:
    """The ``status`` values of one queue table."""

    pending: str
    claimed: str
    done: str
    failed: str

    def all(self) -> tuple[str, str, str, str]:
        return (self.pending, self.claimed, self.done, self.failed)


class LeaseQueue:
    """Every query of a leased queue over ``model`` (a mapped class with the columns above)."""

    def __init__(self, db: AsyncSession, model: Any, states: LeaseStates) -> None:
        self.db = db
        self.model = model
        self.states = states

    async def fail_expired_last_attempts(self, now: datetime, max_attempts: int) -> int:
        """Rows whose worker died during their last allowed attempt become failed."""
        m, s = self.model, self.states
        result = await self.db.execute(
            update(m)
            .where(m.status == s.claimed, m.locked_until <= now, m.attempts >= max_attempts)
            .values(
                status=s.failed,
                locked_until=None,
                lease_id=None,
                last_error="worker lease expired during the last attempt",
            )
            .returning(m.id)
        )
        return len(result.all())

    async def claim(
        self,
        now: datetime,
        *,
        limit: int,
        lease_id: uuid.UUID,
        locked_until: datetime,
        where: ColumnElement[bool] | None = None,
    ) -> list[Any]:
        """Claim up to ``limit`` due rows (oldest due first) under ``lease_id``; ``where``
        narrows the candidates. See the module docstring for the locking."""
        m, s = self.model, self.states
        due = or_(
            and_(m.status == s.pending, m.next_attempt_at <= now),
            and_(m.status == s.claimed, m.locked_until <= now),
        )
        query = select(m.id).where(due)
        if where is not None:
            query = query.where(where)
        ids = list(
            (
                await self.db.execute(
                    query.order_by(m.next_attempt_at, m.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            return []
        result = await self.db.execute(
            update(m)
            .where(m.id.in_(ids))
            .values(
                status=s.claimed,
                attempts=m.attempts + 1,
                locked_until=locked_until,
                lease_id=lease_id,
            )
            .returning(m)
            .execution_options(synchronize_session=False)
        )
        rows = list(result.scalars())
        rows.sort(key=lambda r: (r.next_attempt_at, r.id))
        return rows

    async def renew_lease(self, lease_id: uuid.UUID, locked_until: datetime) -> set[uuid.UUID]:
        """Extend the lease of every row still claimed under ``lease_id``; their ids. A row
        missing from the answer was reclaimed by another worker, or already recorded."""
        m = self.model
        result = await self.db.execute(
            update(m)
            .where(m.lease_id == lease_id, m.status == self.states.claimed)
            .values(locked_until=locked_until)
            .returning(m.id)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars())

    async def release(self, lease_id: uuid.UUID) -> int:
        """Give back the rows still claimed under ``lease_id`` without attempting them (a
        stopping worker): pending again, due at once, the attempt not counted."""
        m = self.model
        result = await self.db.execute(
            update(m)
            .where(m.lease_id == lease_id, m.status == self.states.claimed)
            .values(
                status=self.states.pending,
                attempts=m.attempts - 1,
                locked_until=None,
                lease_id=None,
            )
            .returning(m.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def mark_done(self, row_id: uuid.UUID, lease_id: uuid.UUID, **values: Any) -> bool:
        """Record success (plus ``values``); False when the lease was lost meanwhile."""
        m = self.model
        result = await self.db.execute(
            update(m)
            .where(m.id == row_id, m.lease_id == lease_id)
            .values(
                status=self.states.done,
                locked_until=None,
                lease_id=None,
                last_error=None,
                **values,
            )
            .returning(m.id)
        )
        return result.first() is not None

    async def reschedule(
        self, row_id: uuid.UUID, lease_id: uuid.UUID, next_attempt_at: datetime
    ) -> bool:
        """Pending again at ``next_attempt_at`` without counting this attempt (the handler
        made progress and has more to do); False when the lease was lost meanwhile."""
        m = self.model
        result = await self.db.execute(
            update(m)
            .where(m.id == row_id, m.lease_id == lease_id)
            .values(
                status=self.states.pending,
                attempts=m.attempts - 1,
                next_attempt_at=next_attempt_at,
                locked_until=None,
                lease_id=None,
            )
            .returning(m.id)
        )
        return result.first() is not None

    async def mark_attempt_failed(
        self,
        row_id: uuid.UUID,
        lease_id: uuid.UUID,
        *,
        error: str,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Schedule the next attempt, or mark the row failed when ``next_attempt_at`` is
        None. False when the lease was lost to another worker meanwhile."""
        m = self.model
        values: dict[str, object] = {"locked_until": None, "lease_id": None}
        values["last_error"] = error[:1000]
        if next_attempt_at is None:
            values["status"] = self.states.failed
        else:
            values["status"] = self.states.pending
            values["next_attempt_at"] = next_attempt_at
        result = await self.db.execute(
            update(m).where(m.id == row_id, m.lease_id == lease_id).values(**values).returning(m.id)
        )
        return result.first() is not None

    async def counts_by_status(self) -> dict[str, int]:
        """Rows per state (every state present, 0 when none)."""
        m = self.model
        rows = await self.db.execute(select(m.status, func.count()).group_by(m.status))
        counts = dict.fromkeys(self.states.all(), 0)
        counts.update({status: n for status, n in rows})
        return counts

    async def oldest_pending_due_at(self) -> datetime | None:
        """When the longest-waiting pending row became due (None when none is pending)."""
        m = self.model
        result = await self.db.execute(
            select(func.min(m.next_attempt_at)).where(m.status == self.states.pending)
        )
        oldest: datetime | None = result.scalar_one()
        return oldest

    async def retry_failed(self, now: datetime, where: ColumnElement[bool] | None = None) -> int:
        """Put every failed row (narrowed by ``where``) back in line with a fresh budget."""
        m = self.model
        query = update(m).where(m.status == self.states.failed)
        if where is not None:
            query = query.where(where)
        result = await self.db.execute(
            query.values(status=self.states.pending, attempts=0, next_attempt_at=now).returning(
                m.id
            )
        )
        return len(result.all())
