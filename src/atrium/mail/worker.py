"""The delivery worker: claims due outbox rows, renders and sends them, records the outcome.

One pass (:meth:`MailWorker.run_once`):

1. **Claim** (one short transaction): up to ``mail.batch_size`` due rows — ``pending`` rows
   whose ``next_attempt_at`` has come, and ``sending`` rows whose lease ran out — are
   selected with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and marked ``sending`` with a
   lease (``locked_until = now + mail.lease_seconds``, a fresh ``lease_id``), their
   ``attempts`` counted up. Concurrent workers skip locked rows instead of waiting, and
   after the commit they see the lease, so no row is sent by two workers at once.
2. **Send** each row outside any transaction (rendering in a thread).
3. **Record** each outcome in its own transaction, only while the lease is still ours
   (``WHERE lease_id = ?``): ``sent`` (the context, which may hold a link, is emptied), or
   back to ``pending`` with ``next_attempt_at = now + backoff``, or ``failed`` after
   ``mail.max_attempts`` attempts or a permanent refusal.

A worker that dies between 1 and 3 leaves its rows ``sending``; when the lease expires
another worker claims them again. That retry carries the same ``Message-ID`` (delivery is
at least once; a crash after the SMTP server accepted a message and before it was
recorded is the only way to get a duplicate, and the receiver can recognise it).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.core.clock import Clock
from atrium.core.db import unit_of_work
from atrium.mail.render import Renderer
from atrium.mail.repository import OutboxRepository
from atrium.mail.transport import DeliveryError, PermanentDeliveryError, Transport
from atrium.models import OutboxMessage

log = structlog.get_logger(__name__)


def backoff_seconds(attempts: int, *, base: float, maximum: float) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: ``base · 2^(n-1)``,
    capped at ``maximum`` (30 s, 1 min, 2 min, … 1 h with the defaults)."""
    return float(min(maximum, base * 2 ** max(0, attempts - 1)))


class MailWorker:
    """Delivers outbox rows through ``transport``; many may run against one database."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        transport: Transport,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.mail = settings.mail
        self.clock = clock
        self.transport = transport
        self.renderer = Renderer(settings)
        self._stop = anyio.Event()

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number of rows attempted."""
        now = self.clock.now()
        lease_id = uuid.uuid4()
        async with unit_of_work(self.sessionmaker) as db:
            repo = OutboxRepository(db)
            failed = await repo.fail_expired_last_attempts(now, self.mail.max_attempts)
            if failed:
                log.warning("mail_failed_after_lease_expiry", count=failed)
            rows = await repo.claim(
                now,
                limit=self.mail.batch_size,
                lease_id=lease_id,
                locked_until=now + timedelta(seconds=self.mail.lease_seconds),
            )
        for row in rows:
            await self._deliver(row, lease_id)
        return len(rows)

    async def drain(self, max_passes: int = 1000) -> int:
        """Run passes until nothing is due; the number of rows attempted in total."""
        total = 0
        for _ in range(max_passes):
            n = await self.run_once()
            if n == 0:
                break
            total += n
        return total

    async def run(self) -> None:
        """Poll until :meth:`stop` (or cancellation), every ``mail.poll_interval_seconds``
        when idle. After :meth:`stop` the current batch is finished, so its outcomes are
        recorded instead of waiting for the lease to expire.

        Database errors are logged and retried after the poll interval, so the worker
        survives a database restart.
        """
        log.info("mail_worker_started", transport=type(self.transport).__name__)
        while not self._stop.is_set():
            try:
                n = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; retried
                log.error("mail_worker_pass_failed", error=f"{type(exc).__name__}: {exc}")
                n = 0
            if n == 0:
                with anyio.move_on_after(self.mail.poll_interval_seconds):
                    await self._stop.wait()
        log.info("mail_worker_stopped")

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in progress."""
        self._stop.set()

    @property
    def shutdown_grace_seconds(self) -> float:
        """How long a stopping worker may take to finish its batch before it is cancelled."""
        return min(self.mail.lease_seconds, self.mail.smtp_timeout_seconds + 5)

    async def _deliver(self, row: OutboxMessage, lease_id: uuid.UUID) -> None:
        error: DeliveryError | None = None
        try:
            message = await anyio.to_thread.run_sync(self.renderer.render, row)
        except Exception as exc:  # noqa: BLE001 - a broken template must not stop the batch
            error = PermanentDeliveryError(f"render failed: {type(exc).__name__}: {exc}")
        else:
            try:
                await self.transport.send(message)
            except DeliveryError as exc:
                error = exc
        now = self.clock.now()
        async with unit_of_work(self.sessionmaker) as db:
            repo = OutboxRepository(db)
            if error is None:
                kept = await repo.mark_sent(row.id, lease_id, now)
                log.info("mail_sent", message_id=str(row.id), template=row.template)
            else:
                next_at = self._next_attempt(row.attempts, now, error)
                kept = await repo.mark_attempt_failed(
                    row.id, lease_id, error=str(error), next_attempt_at=next_at
                )
                log.warning(
                    "mail_attempt_failed",
                    message_id=str(row.id),
                    attempts=row.attempts,
                    gave_up=next_at is None,
                    error=str(error),
                )
        if not kept:
            log.warning("mail_lease_lost", message_id=str(row.id))

    def _next_attempt(self, attempts: int, now: datetime, error: DeliveryError) -> datetime | None:
        if isinstance(error, PermanentDeliveryError) or attempts >= self.mail.max_attempts:
            return None
        delay = backoff_seconds(
            attempts, base=self.mail.backoff_base_seconds, maximum=self.mail.backoff_max_seconds
        )
        return now + timedelta(seconds=delay)
