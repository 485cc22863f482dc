"""Every query of account activity: the daily rollup's upserts and reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import LoginDay, User, UserActivityDay, UserPreferences

# Upserts and lookups go in chunks: bound parameters stay far below the drivers' limits
# (32,767 for asyncpg, 32,766 for SQLite).
CHUNK = 1000


def _insert(db: AsyncSession) -> Any:
    return postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert


class ActivityRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def tracked_users(self, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``user_ids`` that exist and have not opted out of activity tracking
        (preference ``privacy.activity_tracking`` false)."""
        ids = list(user_ids)
        tracked: set[uuid.UUID] = set()
        for i in range(0, len(ids), CHUNK):
            rows = await self.db.execute(
                select(User.id, UserPreferences.data)
                .outerjoin(UserPreferences, UserPreferences.user_id == User.id)
                .where(User.id.in_(ids[i : i + CHUNK]))
            )
            for user_id, data in rows:
                privacy = (data or {}).get("privacy")
                if isinstance(privacy, dict) and privacy.get("activity_tracking") is False:
                    continue
                tracked.add(user_id)
        return tracked

    async def upsert_days(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Merge buffered days into ``user_activity_day``: counters added, first seen the
        earlier, last seen the later, sessions the larger (a process counts each session
        of the day once; two processes seeing the same account may each count theirs)."""
        if not rows:
            return
        insert = _insert(self.db)
        postgres = self.db.get_bind().dialect.name == "postgresql"
        least, greatest = (func.least, func.greatest) if postgres else (func.min, func.max)
        for i in range(0, len(rows), CHUNK // 8):
            stmt = insert(UserActivityDay).values(list(rows[i : i + CHUNK // 8]))
            new = stmt.excluded
            table = UserActivityDay.__table__.c
            stmt = stmt.on_conflict_do_update(
                index_elements=["user_id", "day"],
                set_={
                    "first_seen_at": least(table.first_seen_at, new.first_seen_at),
                    "last_seen_at": greatest(table.last_seen_at, new.last_seen_at),
                    "requests": table.requests + new.requests,
                    "logins": table.logins + new.logins,
                    "active_sessions": greatest(table.active_sessions, new.active_sessions),
                    "ip_prefix": func.coalesce(new.ip_prefix, table.ip_prefix),
                },
            )
            await self.db.execute(stmt)

    async def add_logins(self, counts: Mapping[tuple[date, str, str], int]) -> None:
        """Add login counts by (day, method, outcome) to ``login_day``."""
        if not counts:
            return
        insert = _insert(self.db)
        stmt = insert(LoginDay).values(
            [
                {"day": day, "method": method, "outcome": outcome, "count": n}
                for (day, method, outcome), n in counts.items()
            ]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "method", "outcome"],
            set_={"count": LoginDay.__table__.c.count + stmt.excluded.count},
        )
        await self.db.execute(stmt)

    async def days_of(
        self, user_id: uuid.UUID, since: date | None = None, until: date | None = None
    ) -> list[UserActivityDay]:
        """``user_id``'s days from ``since`` to ``until`` (inclusive, either open), newest
        first."""
        query = select(UserActivityDay).where(UserActivityDay.user_id == user_id)
        if since is not None:
            query = query.where(UserActivityDay.day >= since)
        if until is not None:
            query = query.where(UserActivityDay.day <= until)
        rows = await self.db.execute(query.order_by(UserActivityDay.day.desc()))
        return list(rows.scalars())
