"""The email delivery worker: claims due outbox rows, renders and sends them, records the
outcome — a :class:`atrium.core.leasing.LeasedWorker` (claim with ``FOR UPDATE SKIP
LOCKED`` and a lease, renew before each message, record while the lease holds, back off).

Rendering and sending one message must end within ``SEND_BUDGET`` of the lease (else it is
abandoned as a temporary failure), so the outcome is recorded while the lease holds. A
sent row's context is emptied. A retry after a worker died carries the same
``Message-ID`` (delivery is at least once; the only message that can be sent twice is the
one in flight when its worker died or lost the SMTP conversation before the server's
answer, and the receiver can recognise it).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.core.clock import Clock
from atrium.core.db import unit_of_work
from atrium.core.leased_worker import HANDLE_BUDGET, LeasedWorker
from atrium.core.leasing import backoff_seconds
from atrium.mail.render import Renderer
from atrium.mail.repository import OutboxRepository
from atrium.mail.transport import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from atrium.models import OutboxMessage

__all__ = ["SEND_BUDGET", "MailWorker", "backoff_seconds"]

log = structlog.get_logger(__name__)

# Share of the lease that rendering and sending one message may take, leaving the rest
# for recording its outcome before the lease runs out.
SEND_BUDGET = HANDLE_BUDGET


class MailWorker(LeasedWorker):
    """Delivers outbox rows through ``transport``; many may run against one database."""

    name = "mail"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        transport: Transport,
    ) -> None:
        mail = settings.mail
        super().__init__(
            sessionmaker,
            clock,
            lease_seconds=mail.lease_seconds,
            batch_size=mail.batch_size,
            poll_interval_seconds=mail.poll_interval_seconds,
            max_attempts=mail.max_attempts,
        )
        self.settings = settings
        self.mail = mail
        self.transport = transport
        self.renderer = Renderer(settings)

    def queue(self, db: AsyncSession) -> OutboxRepository:
        return OutboxRepository(db)

    @property
    def shutdown_grace_seconds(self) -> float:
        """How long a stopping worker may take to finish its message in flight before it is
        cancelled."""
        return min(self.mail.lease_seconds, self.mail.smtp_timeout_seconds + 5)

    async def handle(self, row: OutboxMessage, lease_id: uuid.UUID) -> None:
        error: DeliveryError | None = None
        budget = self.mail.lease_seconds * SEND_BUDGET
        with anyio.move_on_after(budget) as scope:
            try:
                message = await anyio.to_thread.run_sync(self.renderer.render, row)
            except Exception as exc:  # noqa: BLE001 - a broken template must not stop the batch
                error = PermanentDeliveryError(f"render failed: {type(exc).__name__}: {exc}")
            else:
                try:
                    await self.transport.send(message)
                except DeliveryError as exc:
                    error = exc
        if scope.cancelled_caught:
            error = TransientDeliveryError(f"not sent within {budget:g} s of the lease")
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
        mail = self.mail
        return self.next_attempt(
            attempts, now, base=mail.backoff_base_seconds, maximum=mail.backoff_max_seconds
        )
