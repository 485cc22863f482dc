"""The ``analytics.rollup`` job: the analytics tables recomputed from the daily activity
rollup, the accounts, second factors and sessions.

Each pass recomputes the last ``activity.rollup_lookback_days`` days (flushes of other
processes land late; a day is final once it has left the window) and, on an empty
``analytics_day``, up to a year back. Past days are kept as computed: accounts deleted or
sessions cleaned up since do not rewrite history. Every write is an upsert of a
recomputed value, so an interrupted pass is simply run again (the job contract of
:mod:`atrium.core.jobs`).

Definitions (UTC days):

- ``dau``: accounts with a ``user_activity_day`` row that day; ``wau``/``mau``: distinct
  accounts with a row in the 7/30 days ending that day. Accounts that opted out of
  tracking are not counted.
- ``registrations``: accounts created that day; ``accounts``: created by the day's end and
  not deleted by then; ``verified``: of those, email verified by the day's end;
  ``mfa_accounts``: of those, holding a verified second factor (TOTP) by the day's end.
- Sessions by device: sessions opened that day, by the device type of their user agent
  (``user-agents``: mobile, tablet, desktop, bot, other).
- Retention: accounts registered in an ISO week (cohort) active in each of the
  ``activity.retention_weeks`` weeks after.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy import Date, Integer, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.activity.repository import _insert
from atrium.core.db import unit_of_work
from atrium.core.jobs import JobContext
from atrium.models import (
    AnalyticsDay,
    AuthSession,
    MfaFactor,
    RetentionCohort,
    SessionDeviceDay,
    User,
    UserActivityDay,
)

log = structlog.get_logger(__name__)

BACKFILL_DAYS = 366
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")


def device_type(user_agent: str | None) -> str:
    """``desktop``, ``mobile``, ``tablet``, ``bot`` or ``other`` (no or unknown agent)."""
    if not user_agent:
        return "other"
    # Imported here, by the rollup job only: user-agents loads and compiles several
    # hundred regular expressions at import (~0.2 s of every process start otherwise).
    from user_agents import parse as parse_user_agent

    agent = parse_user_agent(user_agent[:512])
    if agent.is_bot:
        return "bot"
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return "other"


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


async def _active(db: AsyncSession, first: date, last: date) -> dict[date, dict[str, int]]:
    """DAU, WAU and MAU of every day ``first``..``last`` in one pass over the activity rows
    of ``first - 29``..``last``: each row covers the days from its own to the account's
    next active day (exclusive), at most 7 (WAU) or 30 (MAU) days; summing the coverages'
    starts and ends (a difference array) counts each account once per day. The database
    returns (day, next day, count) groups only: a few thousand rows for a year."""
    lo = first - timedelta(days=29)
    activity = UserActivityDay
    following = func.lead(activity.day, type_=Date).over(
        partition_by=activity.user_id, order_by=activity.day
    )
    rows = select(activity.day.label("day"), following.label("next_day")).where(
        activity.day >= lo, activity.day <= last
    )
    inner = rows.subquery()
    groups = await db.execute(
        select(inner.c.day, inner.c.next_day, func.count()).group_by(inner.c.day, inner.c.next_day)
    )
    size = (last - lo).days + 32
    dau = [0] * size
    delta = {7: [0] * size, 30: [0] * size}
    for day, next_day, count in groups:
        i = (day - lo).days
        dau[i] += count
        for window, changes in delta.items():
            stop = i + window
            if next_day is not None:
                stop = min(stop, (next_day - lo).days)
            changes[i] += count
            changes[stop] -= count
    running = {7: 0, 30: 0}
    out: dict[date, dict[str, int]] = {}
    for i in range((last - lo).days + 1):
        for window in running:
            running[window] += delta[window][i]
        day = lo + timedelta(days=i)
        if day >= first:
            out[day] = {"dau": dau[i], "wau": running[7], "mau": running[30]}
    return out


def _live(end: datetime) -> Any:
    return (User.created_at < end) & (User.deleted_at.is_(None) | (User.deleted_at >= end))


async def _accounts_by_day(db: AsyncSession, day: date) -> dict[str, int]:
    """Registrations and the accounts at the day's end, counted by the database."""
    begin, end = _start(day), _start(day + timedelta(days=1))
    live = _live(end)
    counts = (
        await db.execute(
            select(func.count(), func.count().filter(User.email_verified_at < end)).where(live)
        )
    ).one()
    registered = select(func.count()).where(User.created_at >= begin, User.created_at < end)
    mfa = select(func.count(func.distinct(MfaFactor.user_id))).where(
        MfaFactor.verified_at < end, MfaFactor.user_id.in_(select(User.id).where(live))
    )
    return {
        "registrations": int((await db.execute(registered)).scalar_one()),
        "accounts": int(counts[0]),
        "verified": int(counts[1]),
        "mfa_accounts": int((await db.execute(mfa)).scalar_one()),
    }


async def _accounts_in_bulk(
    db: AsyncSession, first: date, last: date
) -> dict[date, dict[str, int]]:
    """The same figures for a long range from one read of the accounts' dates: a count of
    accounts "X by the end of d and not deleted by then" is the number of X times before
    d's end minus the number of max(X, deletion) times before it (sorted lists, bisect)."""
    end = _start(last + timedelta(days=1))
    first_factor = (
        select(MfaFactor.user_id, func.min(MfaFactor.verified_at).label("at"))
        .where(MfaFactor.verified_at.is_not(None))
        .group_by(MfaFactor.user_id)
        .subquery()
    )
    rows = await db.execute(
        select(User.created_at, User.deleted_at, User.email_verified_at, first_factor.c.at)
        .outerjoin(first_factor, first_factor.c.user_id == User.id)
        .where(User.created_at < end)
    )
    created: list[datetime] = []
    pairs: dict[str, tuple[list[datetime], list[datetime]]] = {
        k: ([], []) for k in ("accounts", "verified", "mfa_accounts")
    }
    for created_at, deleted_at, verified_at, factor_at in rows:
        created.append(created_at)
        for key, since in (
            ("accounts", created_at),
            ("verified", verified_at),
            ("mfa_accounts", factor_at),
        ):
            if since is None:
                continue
            since = max(since, created_at)
            pairs[key][0].append(since)
            if deleted_at is not None:
                pairs[key][1].append(max(since, deleted_at))
    created.sort()
    for held, gone in pairs.values():
        held.sort()
        gone.sort()
    out: dict[date, dict[str, int]] = {}
    day = first
    while day <= last:
        begin, stop = _start(day), _start(day + timedelta(days=1))
        figures = {
            "registrations": bisect_left(created, stop) - bisect_left(created, begin),
        }
        for key, (held, gone) in pairs.items():
            figures[key] = bisect_left(held, stop) - bisect_left(gone, stop)
        out[day] = figures
        day += timedelta(days=1)
    return out


@functools.lru_cache(maxsize=4096)
def _cached_device_type(user_agent: str | None) -> str:
    return device_type(user_agent)


async def _devices(db: AsyncSession, first: date, last: date) -> dict[date, Counter[str]]:
    rows = await db.execute(
        select(AuthSession.created_at, AuthSession.user_agent).where(
            AuthSession.created_at >= _start(first),
            AuthSession.created_at < _start(last + timedelta(days=1)),
        )
    )
    out: dict[date, Counter[str]] = {}
    for created_at, agent in rows:
        out.setdefault(created_at.date(), Counter())[_cached_device_type(agent)] += 1
    return out


def _week_offset(db: AsyncSession, cohort: date) -> Any:
    """Whole weeks from ``cohort`` to ``user_activity_day.day`` as a SQL expression: days
    floor-divided by 7 (never ``/``, which SQLAlchemy 2 renders as a numeric division on
    PostgreSQL, whose cast to integer then rounds Thursday to Sunday into the next week;
    days on or after ``cohort`` only, so SQLite's truncating cast is a floor too)."""
    if db.get_bind().dialect.name == "postgresql":
        return cast((UserActivityDay.day - literal(cohort)) // 7, Integer)
    return cast(
        (func.julianday(UserActivityDay.day) - func.julianday(cohort.isoformat())) / 7, Integer
    )


async def _cohort(db: AsyncSession, cohort: date, weeks: int, today: date) -> list[dict[str, Any]]:
    begin, end = _start(cohort), _start(cohort + timedelta(days=7))
    size = int(
        (
            await db.execute(
                select(func.count()).where(User.created_at >= begin, User.created_at < end)
            )
        ).scalar_one()
    )
    if not size:
        return []
    last_day = min(today, cohort + timedelta(days=7 * (weeks + 1) - 1))
    offset = _week_offset(db, cohort).label("week_offset")
    rows = await db.execute(
        select(offset, func.count(func.distinct(UserActivityDay.user_id)))
        .join(User, User.id == UserActivityDay.user_id)
        .where(
            User.created_at >= begin,
            User.created_at < end,
            UserActivityDay.day >= cohort,
            UserActivityDay.day <= last_day,
        )
        .group_by(offset)
    )
    active = {int(k): int(v) for k, v in rows}
    elapsed = min(weeks, (today - cohort).days // 7)
    return [
        {"cohort_week": cohort, "week_offset": k, "cohort_size": size, "active": active.get(k, 0)}
        for k in range(elapsed + 1)
    ]


async def _first_day(db: AsyncSession, today: date, lookback: int) -> date:
    latest = (await db.execute(select(func.max(AnalyticsDay.day)))).scalar_one()
    if latest is not None:
        return min(latest + timedelta(days=1), today - timedelta(days=lookback - 1))
    earliest = [
        (await db.execute(select(func.min(UserActivityDay.day)))).scalar_one(),
        (await db.execute(select(func.min(User.created_at)))).scalar_one(),
    ]
    days = [d.date() if isinstance(d, datetime) else d for d in earliest if d is not None]
    floor = today - timedelta(days=BACKFILL_DAYS - 1)
    return max(min(days, default=today), floor)


async def rollup_days(db: AsyncSession, first: date, last: date, now: datetime) -> int:
    """Recompute ``analytics_day`` and ``session_device_day`` for ``first``..``last``;
    returns the number of days computed. Up to a week, the accounts are counted by the
    database day by day; a longer range (a backfill) reads their dates once."""
    insert = _insert(db)
    active = await _active(db, first, last)
    if (last - first).days < 7:
        accounts = {}
        day = first
        while day <= last:
            accounts[day] = await _accounts_by_day(db, day)
            day += timedelta(days=1)
    else:
        accounts = await _accounts_in_bulk(db, first, last)
    devices = await _devices(db, first, last)
    day, days = first, 0
    while day <= last:
        figures = {**active[day], **accounts[day]}
        stmt = insert(AnalyticsDay).values(day=day, computed_at=now, **figures)
        await db.execute(
            stmt.on_conflict_do_update(index_elements=["day"], set_={**figures, "computed_at": now})
        )
        counted = devices.get(day, Counter())
        for kind in DEVICE_TYPES:
            row = insert(SessionDeviceDay).values(day=day, device_type=kind, sessions=counted[kind])
            await db.execute(
                row.on_conflict_do_update(
                    index_elements=["day", "device_type"], set_={"sessions": counted[kind]}
                )
            )
        day += timedelta(days=1)
        days += 1
    return days


async def rollup_cohorts(db: AsyncSession, first: date, last: date, today: date, weeks: int) -> int:
    """Recompute the retention of the cohorts of the weeks starting ``first``..``last``
    (Mondays), followed ``weeks`` weeks up to ``today``; returns the cohorts computed."""
    insert = _insert(db)
    cohort, count = week_start(first), 0
    while cohort <= last:
        for values in await _cohort(db, cohort, weeks, today):
            row = insert(RetentionCohort).values(**values)
            await db.execute(
                row.on_conflict_do_update(
                    index_elements=["cohort_week", "week_offset"],
                    set_={"cohort_size": values["cohort_size"], "active": values["active"]},
                )
            )
        cohort += timedelta(days=7)
        count += 1
    return count


async def run_rollup(ctx: JobContext) -> None:
    """``analytics.rollup``: bring the analytics tables up to today (see the module).
    One transaction per month of days and per eight cohorts: a year's backfill never holds
    one transaction for minutes."""
    now = ctx.clock.now()
    today = now.date()
    settings = ctx.settings.activity
    async with unit_of_work(ctx.sessionmaker) as db:
        first = await _first_day(db, today, settings.rollup_lookback_days)
    day = first
    while day <= today:
        last = min(today, day + timedelta(days=30))
        async with unit_of_work(ctx.sessionmaker) as db:
            await rollup_days(db, day, last, now)
        day = last + timedelta(days=1)
    # Cohorts still inside their follow-up window change as days are added.
    cohort = week_start(first - timedelta(days=7 * settings.retention_weeks))
    while cohort <= today:
        last_cohort = min(week_start(today), cohort + timedelta(days=7 * 7))
        async with unit_of_work(ctx.sessionmaker) as db:
            await rollup_cohorts(db, cohort, last_cohort, today, settings.retention_weeks)
        cohort = last_cohort + timedelta(days=7)
    log.info("analytics_rolled_up", since=first.isoformat(), through=today.isoformat())
