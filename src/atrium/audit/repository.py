"""Every query of the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    target_id: str | None = None
    target_type: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def list_events(
        self,
        filters: AuditFilter,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[AuditEvent]:
        """Newest first, by ``(occurred_at, id)`` descending; ``limit + 1`` rows are asked
        for so the caller knows whether there is a next page. One query; each filter
        meets an ``(x, occurred_at, id)`` index."""
        stmt: Select[Any] = select(AuditEvent)
        if filters.actor_id is not None:
            stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
        if filters.target_id is not None:
            stmt = stmt.where(AuditEvent.target_id == filters.target_id)
        if filters.target_type is not None:
            stmt = stmt.where(AuditEvent.target_type == filters.target_type)
        if filters.action is not None:
            stmt = stmt.where(AuditEvent.action == filters.action)
        if filters.since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
        if filters.until is not None:
            stmt = stmt.where(AuditEvent.occurred_at < filters.until)
        if after is not None:
            stmt = stmt.where(tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(*after))
        stmt = stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
        return list((await self.db.execute(stmt)).scalars())
