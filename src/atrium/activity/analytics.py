"""The analytics report: the rollup tables read over a range, bucketed by day, ISO week
or calendar month. Reads only the small rollup tables (a row per day, per day and
method, per cohort and week): its cost does not grow with the number of accounts."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.activity.exceptions import InvalidRange
from atrium.activity.rollups import DEVICE_TYPES, week_start
from atrium.core.activity import LOGIN_METHODS
from atrium.models import AnalyticsDay, LoginDay, RetentionCohort, SessionDeviceDay

MAX_DAYS = {"day": 366, "week": 2 * 366, "month": 5 * 366}
"""The longest range per interval (buckets stay a few hundred at most)."""


class Interval(StrEnum):
    day = "day"
    week = "week"
    month = "month"


def buckets(since: date, until: date, interval: Interval) -> list[tuple[date, date]]:
    """``(first, last)`` days of each bucket covering ``since``..``until`` (inclusive),
    clipped to the range: single days, ISO weeks (Monday to Sunday) or calendar months."""
    out = []
    start = since
    while start <= until:
        if interval is Interval.day:
            end = start
        elif interval is Interval.week:
            end = week_start(start) + timedelta(days=6)
        else:
            following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            end = following - timedelta(days=1)
        end = min(end, until)
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


def check_range(
    since: date | None, until: date | None, interval: Interval, today: date
) -> tuple[date, date]:
    """The range asked; default the 30 days to ``today``.

    Raises:
        InvalidRange: 422, ``from`` after ``to``, or longer than :data:`MAX_DAYS`.
    """
    until = until or today
    since = since or until - timedelta(days=29)
    if since > until:
        raise InvalidRange("'from' is after 'to'.")
    if (until - since).days + 1 > MAX_DAYS[interval.value]:
        raise InvalidRange(
            f"A range by {interval.value} spans at most {MAX_DAYS[interval.value]} days."
        )
    return since, until


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


OUTCOMES = ("success", "failure")
LOGIN_COLUMNS = tuple((method, outcome) for method in LOGIN_METHODS for outcome in OUTCOMES)
"""The order of the login counts in a pivoted ``l`` row."""
_WIDTH = max(7, len(LOGIN_COLUMNS), len(DEVICE_TYPES))


async def _read(db: AsyncSession, since: date, until: date) -> list[tuple[Any, ...]]:
    """Every rollup figure the report needs, in one round trip: a UNION ALL of rows
    ``(kind, day, n1, …)``, one per day and table (logins and devices pivoted into
    columns by the database: a year is about 1,100 rows, not 5,000) and one per cohort
    and week offset:

    - ``d``: dau, wau, mau, registrations, accounts, verified, mfa_accounts;
    - ``l``: the day's logins in :data:`LOGIN_COLUMNS` order;
    - ``s``: the day's sessions in ``DEVICE_TYPES`` order;
    - ``r`` (day = cohort week): week offset, cohort size, active.
    """
    zero = literal(0)

    def shaped(kind: str, day: Any, *counts: Any) -> list[Any]:
        padded = [*counts, *([zero] * (_WIDTH - len(counts)))]
        return [
            literal(kind).label("kind"),
            day.label("day"),
            *(cast(c, BigInteger).label(f"n{i + 1}") for i, c in enumerate(padded)),
        ]

    def pivot(value: Any, condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    d, lg, sd, rc = AnalyticsDay, LoginDay, SessionDeviceDay, RetentionCohort
    query = union_all(
        select(
            *shaped(
                "d",
                d.day,
                d.dau,
                d.wau,
                d.mau,
                d.registrations,
                d.accounts,
                d.verified,
                d.mfa_accounts,
            )
        ).where(d.day >= since, d.day <= until),
        select(
            *shaped(
                "l",
                lg.day,
                *(pivot(lg.count, and_(lg.method == m, lg.outcome == o)) for m, o in LOGIN_COLUMNS),
            )
        )
        .where(lg.day >= since, lg.day <= until)
        .group_by(lg.day),
        select(
            *shaped("s", sd.day, *(pivot(sd.sessions, sd.device_type == k) for k in DEVICE_TYPES))
        )
        .where(sd.day >= since, sd.day <= until)
        .group_by(sd.day),
        select(*shaped("r", rc.cohort_week, rc.week_offset, rc.cohort_size, rc.active)).where(
            rc.cohort_week >= week_start(since), rc.cohort_week <= until
        ),
    )
    return [tuple(row) for row in (await db.execute(query)).all()]


def _sum(per_day: dict[date, list[int]], span: list[date], width: int) -> list[int]:
    totals = [0] * width
    for day in span:
        counts = per_day.get(day)
        if counts is not None:
            for i in range(width):
                totals[i] += counts[i]
    return totals


async def report(db: AsyncSession, since: date, until: date, interval: Interval) -> dict[str, Any]:
    """The analytics of ``since``..``until`` by ``interval`` (the shape of
    :class:`atrium.activity.schemas.AnalyticsReport`). A bucket without computed days has
    null figures (the rollup job has not reached it)."""
    days: dict[date, list[int]] = {}
    logins: dict[date, list[int]] = {}
    devices: dict[date, list[int]] = {}
    cohort_rows: list[tuple[date, list[int]]] = []
    for kind, day, *counts in await _read(db, since, until):
        if kind == "d":  # dau, wau, mau, registrations, accounts, verified, mfa_accounts
            days[day] = counts
        elif kind == "l":
            logins[day] = counts
        elif kind == "s":
            devices[day] = counts
        else:
            cohort_rows.append((day, counts))

    out = []
    for first, last in buckets(since, until, interval):
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        computed = [days[d] for d in span if d in days]
        end = computed[-1] if computed else None
        login_totals = _sum(logins, span, len(LOGIN_COLUMNS))
        login_counts: dict[str, dict[str, int]] = {m: {} for m in LOGIN_METHODS}
        for (method, outcome), n in zip(LOGIN_COLUMNS, login_totals, strict=True):
            login_counts[method][outcome] = n
        device_totals = _sum(devices, span, len(DEVICE_TYPES))
        out.append(
            {
                "start": first,
                "end": last,
                "dau": round(sum(r[0] for r in computed) / len(computed), 1) if computed else None,
                "wau": end[1] if end else None,
                "mau": end[2] if end else None,
                "registrations": sum(r[3] for r in computed),
                "accounts": end[4] if end else None,
                "verified_share": _share(end[5], end[4]) if end else None,
                "mfa_adoption": _share(end[6], end[4]) if end else None,
                "logins": login_counts,
                "sessions_by_device": dict(zip(DEVICE_TYPES, device_totals, strict=True)),
            }
        )
    cohorts: dict[date, dict[str, Any]] = {}
    for week, (_offset, size, active, *_) in sorted(cohort_rows, key=lambda r: (r[0], r[1][0])):
        entry = cohorts.setdefault(week, {"cohort_week": week, "size": size, "active": []})
        entry["active"].append(active)
    retention = [
        {**c, "rates": [_share(n, c["size"]) for n in c["active"]]} for c in cohorts.values()
    ]
    return {
        "from": since,
        "to": until,
        "interval": interval.value,
        "buckets": out,
        "retention": retention,
    }
