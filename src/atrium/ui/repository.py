"""Queries of the admin console's charts: daily counts computed from existing tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import AuditEvent, User


def _day(db: AsyncSession, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, on SQLite and PostgreSQL."""
    if db.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _key(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


class StatsRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def registrations_per_day(self, since: datetime) -> dict[str, int]:
        """Accounts created per UTC day since ``since`` (soft-deleted ones included): a
        range scan of the ``created_at`` index."""
        day = _day(self.db, User.created_at)
        rows = await self.db.execute(
            select(day, func.count()).where(User.created_at >= since).group_by(day)
        )
        return {_key(d): n for d, n in rows}

    async def events_per_day(self, action: str, since: datetime) -> dict[str, int]:
        """Audit events of ``action`` per UTC day (the ``(action, occurred_at)`` index)."""
        day = _day(self.db, AuditEvent.occurred_at)
        rows = await self.db.execute(
            select(day, func.count())
            .where(AuditEvent.action == action, AuditEvent.occurred_at >= since)
            .group_by(day)
        )
        return {_key(d): n for d, n in rows}

    async def active_users_per_day(self, since: datetime) -> dict[str, int]:
        """Distinct accounts that signed in per UTC day."""
        day = _day(self.db, AuditEvent.occurred_at)
        rows = await self.db.execute(
            select(day, func.count(distinct(AuditEvent.actor_id)))
            .where(AuditEvent.action == "auth.login_succeeded", AuditEvent.occurred_at >= since)
            .group_by(day)
        )
        return {_key(d): n for d, n in rows}
