"""The polling loop over a :class:`atrium.core.leasing.LeaseQueue` (see that module for
the claim, lease, renew and record protocol): the email worker and the event dispatcher
are both one of these."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from atrium.core.clock import Clock
from atrium.core.db import unit_of_work
from atrium.core.leasing import LeaseQueue, backoff_seconds

log = structlog.get_logger(__name__)

# Share of the lease that handling one row may take, leaving the rest for recording its
# outcome while the lease holds.
HANDLE_BUDGET = 0.8


class LeasedWorker(ABC):
    """The polling loop over a :class:`LeaseQueue`; subclasses say how to handle one row.

    ``name`` prefixes the log events (``<name>_lease_lost``, ``<name>_worker_started``).
    ``concurrency`` rows of a claimed batch are handed to :meth:`handle_group` at a time
    (the lease is renewed before each group); 1 handles them one by one.
    """

    name = "queue"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        lease_seconds: float,
        batch_size: int,
        poll_interval_seconds: float,
        max_attempts: int,
        concurrency: int = 1,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.poll_interval_seconds = poll_interval_seconds
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self._stop = anyio.Event()
        self._wake = anyio.Event()

    @abstractmethod
    def queue(self, db: AsyncSession) -> LeaseQueue: ...

    @abstractmethod
    async def handle(self, row: Any, lease_id: uuid.UUID) -> None:
        """Attempt ``row`` and record its outcome while the lease is ours."""

    async def prepare(self, db: AsyncSession, now: datetime) -> None:
        """Work done in the claim transaction before claiming (none by default)."""
        return None

    def claim_where(self) -> ColumnElement[bool] | None:
        """Narrows the rows this worker claims (all due rows by default)."""
        return None

    async def claimed(self, rows: Sequence[Any]) -> None:
        """Called once per batch after the claim committed (nothing by default)."""
        return None

    async def run_once(self) -> int:
        """Claim one batch and handle it; the number of rows attempted."""
        now = self.clock.now()
        lease_id = uuid.uuid4()
        async with unit_of_work(self.sessionmaker) as db:
            await self.prepare(db, now)
            queue = self.queue(db)
            failed = await queue.fail_expired_last_attempts(now, self.max_attempts)
            if failed:
                log.warning(f"{self.name}_failed_after_lease_expiry", count=failed)
            rows = await queue.claim(
                now,
                limit=self.batch_size,
                lease_id=lease_id,
                locked_until=now + timedelta(seconds=self.lease_seconds),
                where=self.claim_where(),
            )
        if rows:
            await self.claimed(rows)
        held_until = now + timedelta(seconds=self.lease_seconds)
        held: set[uuid.UUID] = {row.id for row in rows}
        step = max(1, self.concurrency)
        for start in range(0, len(rows), step):
            if self._stop.is_set():
                await self._release(lease_id, len(rows) - start)
                break
            if self.clock.now() + self.row_budget > held_until:
                # Not enough lease left for one more group: renew (rows reclaimed by another
                # worker after our lease ran out drop out of the answer).
                held_until = self.clock.now() + timedelta(seconds=self.lease_seconds)
                held = await self._renew(lease_id, held_until)
            group = []
            for row in rows[start : start + step]:
                if row.id in held:
                    group.append(row)
                else:
                    log.warning(f"{self.name}_lease_lost", row_id=str(row.id))
            if group:
                await self.handle_group(group, lease_id)
        return len(rows)

    async def handle_group(self, rows: Sequence[Any], lease_id: uuid.UUID) -> None:
        """Attempt up to ``concurrency`` rows together and record their outcomes, within
        one row's budget; by default one :meth:`handle` after the other (``concurrency``
        is 1 unless a subclass sets it)."""
        for row in rows:
            await self.handle(row, lease_id)

    @property
    def row_budget(self) -> timedelta:
        """How long handling one row may take (``HANDLE_BUDGET`` of the lease); the lease
        is renewed before a row when less than this is left of it."""
        return timedelta(seconds=self.lease_seconds * HANDLE_BUDGET)

    async def _renew(self, lease_id: uuid.UUID, locked_until: datetime) -> set[uuid.UUID]:
        async with unit_of_work(self.sessionmaker) as db:
            return await self.queue(db).renew_lease(lease_id, locked_until)

    async def _release(self, lease_id: uuid.UUID, remaining: int) -> None:
        async with unit_of_work(self.sessionmaker) as db:
            released = await self.queue(db).release(lease_id)
        log.info(f"{self.name}_batch_released", released=released, unattempted=remaining)

    async def drain(self, max_passes: int = 1000) -> int:
        """Run passes until nothing is due; the number of rows attempted in total."""
        total = 0
        for _ in range(max_passes):
            n = await self.run_once()
            if n == 0:
                break
            total += n
        return total

    def next_attempt(
        self, attempts: int, now: datetime, *, base: float, maximum: float
    ) -> datetime:
        """``now`` plus :func:`backoff_seconds` for ``attempts`` failed attempts."""
        return now + timedelta(seconds=backoff_seconds(attempts, base=base, maximum=maximum))

    def wake(self) -> None:
        """Start the next pass now instead of at the end of the poll interval."""
        self._wake.set()

    async def run(self) -> None:
        """Poll until :meth:`stop` (or cancellation), every ``poll_interval_seconds`` when
        idle or at once when woken. After :meth:`stop` the row in flight is finished and
        its outcome recorded; the rest of the batch is given back to other workers at once.

        Database errors are logged and retried after the poll interval, so the worker
        survives a database restart.
        """
        log.info(f"{self.name}_worker_started")
        while not self._stop.is_set():
            self._wake = anyio.Event()
            try:
                n = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; retried
                log.error(f"{self.name}_worker_pass_failed", error=f"{type(exc).__name__}: {exc}")
                n = 0
            if n == 0 and not self._stop.is_set():
                with anyio.move_on_after(self.poll_interval_seconds):
                    await self._wake.wait()  # stop() sets it too
        log.info(f"{self.name}_worker_stopped")

    def stop(self) -> None:
        """Ask :meth:`run` to return after the row in flight."""
        self._stop.set()
        self._wake.set()
