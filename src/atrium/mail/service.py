"""Queueing email: a row in the outbox, in the caller's unit of work.

Nothing is sent from a request. The row is inserted (flushed) in the same transaction as
the change that causes it, so it exists exactly when the change was committed: a rolled
back registration leaves no verification email behind. The delivery worker
(:mod:`atrium.mail.worker`) sends it afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.clock import Clock
from atrium.mail.render import TEMPLATES
from atrium.mail.repository import OutboxRepository
from atrium.models import OutboxMessage, OutboxStatus

log = structlog.get_logger(__name__)


class Outbox:
    """Writes outbox rows through the caller's session (never commits)."""

    def __init__(self, db: AsyncSession, clock: Clock, default_locale: str = "en") -> None:
        self.repo = OutboxRepository(db)
        self.clock = clock
        self.default_locale = default_locale

    async def enqueue(
        self,
        template: str,
        *,
        to: str,
        locale: str | None,
        context: dict[str, Any],
        user_id: uuid.UUID | None = None,
    ) -> OutboxMessage:
        """Queue ``template`` for ``to``; rendered in ``locale`` (else the default) by the
        worker with ``context`` (JSON-serialisable values only).

        Raises:
            ValueError: ``template`` is not one of :data:`atrium.mail.render.TEMPLATES`.
        """
        if template not in TEMPLATES:
            raise ValueError(f"unknown mail template {template!r}")
        now = self.clock.now()
        message = OutboxMessage(
            id=uuid.uuid4(),
            template=template,
            to_address=to,
            locale=locale or self.default_locale,
            context=context,
            user_id=user_id,
            status=OutboxStatus.pending.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        await self.repo.add(message)
        log.info("mail_queued", template=template, message_id=str(message.id))
        return message
