"""The rules of activity tracking: flushing the in-memory buffer into the daily rollup,
reading an account's days and the opt-out.

The rollup is personal data (GDPR art. 4(1): it is about an identified account), kept for
``retention.activity_days`` (:mod:`atrium.retention.policies`, the ``activity`` policy),
exported by :func:`list_activity_for_user` (right of access,
art. 15) and not recorded at all for an account whose preference
``privacy.activity_tracking`` is false (the opt-out of non-essential tracking).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.activity.exceptions import InvalidRange
from atrium.activity.repository import ActivityRepository
from atrium.core.activity import ActivityBuffer
from atrium.core.clock import Clock
from atrium.core.db import unit_of_work
from atrium.models import UserActivityDay
from atrium.profiles.preferences import preferences_of
from atrium.users.exceptions import UserNotFound
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)

MAX_RANGE_DAYS = 400
"""The longest range ``GET .../activity`` answers (the default retention of the rollup)."""


async def flush(
    sessionmaker: async_sessionmaker[AsyncSession], buffer: ActivityBuffer, clock: Clock
) -> int:
    """Merge what ``buffer`` holds into ``user_activity_day`` and ``login_day`` in one
    transaction; returns the number of account-days written. Accounts that opted out (or
    no longer exist) are dropped here, before anything is stored. On a database error the
    counts go back into the buffer for the next flush, and the error is raised."""
    drained = buffer.drain(clock.now().date())
    if not drained.activity and not drained.logins:
        return 0
    try:
        async with unit_of_work(sessionmaker) as db:
            repo = ActivityRepository(db)
            tracked = await repo.tracked_users({user_id for user_id, _ in drained.activity})
            rows = [
                {
                    "user_id": user_id,
                    "day": day,
                    "first_seen_at": entry.first_seen_at,
                    "last_seen_at": entry.last_seen_at,
                    "requests": entry.requests,
                    "logins": entry.logins,
                    "active_sessions": entry.sessions,
                    "ip_prefix": entry.ip_prefix,
                }
                for (user_id, day), entry in drained.activity.items()
                if user_id in tracked
            ]
            await repo.upsert_days(rows)
            await repo.add_logins(drained.logins)
    except BaseException:
        buffer.restore(drained)
        raise
    return len(rows)


async def flush_periodically(
    sessionmaker: async_sessionmaker[AsyncSession],
    buffer: ActivityBuffer,
    clock: Clock,
    interval_seconds: float,
    stopping: asyncio.Event,
) -> None:
    """Flush every ``interval_seconds`` until ``stopping`` is set, then once more. Each
    API process runs one (its buffer is its own); a failed flush is logged and retried at
    the next interval with the counts kept."""
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_seconds)
        try:
            await flush(sessionmaker, buffer, clock)
        except Exception as exc:  # noqa: BLE001 - statistics must never stop the API
            log.warning("activity_flush_failed", error=str(exc), pending=buffer.pending())


def check_range(since: date | None, until: date | None, today: date) -> tuple[date, date]:
    """The range asked (default: the last 30 days to ``today``).

    Raises:
        InvalidRange: 422, ``since`` after ``until`` or more than :data:`MAX_RANGE_DAYS`.
    """
    until = until or today
    since = since or until - timedelta(days=29)
    if since > until:
        raise InvalidRange("'from' is after 'to'.")
    if (until - since).days + 1 > MAX_RANGE_DAYS:
        raise InvalidRange(f"The range is longer than {MAX_RANGE_DAYS} days.")
    return since, until


async def activity_of(
    db: AsyncSession, user_id: uuid.UUID, since: date, until: date
) -> tuple[list[UserActivityDay], bool]:
    """``user_id``'s days between ``since`` and ``until`` (newest first) and whether the
    account is tracked (its preference).

    Raises:
        UserNotFound: 404, no such account.
    """
    if await UserRepository(db).get(user_id) is None:
        raise UserNotFound("No such account.")
    rows = await ActivityRepository(db).days_of(user_id, since, until)
    prefs = await preferences_of(db, user_id)
    return rows, prefs.privacy.activity_tracking


async def list_activity_for_user(db: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every stored day of ``user_id``, newest first, as JSON-ready dicts (the export's
    ``activity.json``, GDPR art. 15 and 20): ``day`` (ISO date), ``first_seen_at`` and
    ``last_seen_at`` (ISO 8601 UTC), ``requests``, ``logins``, ``active_sessions``,
    ``ip_prefix`` (the truncated network, e.g. ``"203.0.113.0/24"``, or null)."""
    return [day_json(row) for row in await ActivityRepository(db).days_of(user_id)]


def day_json(row: UserActivityDay) -> dict[str, Any]:
    return {
        "day": row.day.isoformat(),
        "first_seen_at": row.first_seen_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "requests": row.requests,
        "logins": row.logins,
        "active_sessions": row.active_sessions,
        "ip_prefix": row.ip_prefix,
    }


async def activity_for_export(
    db: AsyncSession, user_id: uuid.UUID
) -> AsyncIterator[list[dict[str, Any]]]:
    """``user_id``'s stored days, oldest first, in batches of up to 500 JSON-ready dicts
    (the fields of :func:`list_activity_for_user`): the shape of the data export's
    ``ActivityReader`` (``atrium.privacy.archive``), for ``activity.json``."""
    rows = await ActivityRepository(db).days_of(user_id)
    rows.reverse()
    for i in range(0, len(rows), 500):
        yield [day_json(row) for row in rows[i : i + 500]]
