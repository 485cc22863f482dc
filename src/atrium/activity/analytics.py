"""The analytics report: the rollup tables read over a range, bucketed by day, ISO week
or calendar month. Reads only the small rollup tables (a row per day, per day and
method, per cohort and week): its cost does not grow with the number of accounts."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import String, cast, literal, null, select, union_all
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


async def _read(db: AsyncSession, since: date, until: date) -> list[Any]:
    """Every rollup row the report needs, in one round trip (a UNION ALL of the four
    tables in one shape: ``kind``, ``day``, two labels, seven counts)."""
    zero, blank = literal(0), cast(null(), String)

    def shaped(kind: str, day: Any, a: Any, b: Any, *counts: Any) -> Any:
        padded = [*counts, *([zero] * (7 - len(counts)))]
        return [
            literal(kind).label("kind"),
            day.label("day"),
            a.label("a"),
            b.label("b"),
            *(c.label(f"n{i + 1}") for i, c in enumerate(padded)),
        ]

    d, lg, sd, rc = AnalyticsDay, LoginDay, SessionDeviceDay, RetentionCohort
    query = union_all(
        select(
            *shaped(
                "d",
                d.day,
                blank,
                blank,
                d.dau,
                d.wau,
                d.mau,
                d.registrations,
                d.accounts,
                d.verified,
                d.mfa_accounts,
            )
        ).where(d.day >= since, d.day <= until),
        select(*shaped("l", lg.day, lg.method, lg.outcome, lg.count)).where(
            lg.day >= since, lg.day <= until
        ),
        select(*shaped("s", sd.day, sd.device_type, blank, sd.sessions)).where(
            sd.day >= since, sd.day <= until
        ),
        select(
            *shaped("r", rc.cohort_week, blank, blank, rc.week_offset, rc.cohort_size, rc.active)
        ).where(rc.cohort_week >= week_start(since), rc.cohort_week <= until),
    )
    return list((await db.execute(query)).all())


async def report(db: AsyncSession, since: date, until: date, interval: Interval) -> dict[str, Any]:
    """The analytics of ``since``..``until`` by ``interval`` (the shape of
    :class:`atrium.activity.schemas.AnalyticsReport`). A bucket without computed days has
    null figures (the rollup job has not reached it)."""
    rows = await _read(db, since, until)
    # "d" rows: n1..n7 = dau, wau, mau, registrations, accounts, verified, mfa_accounts.
    days = {r.day: r for r in rows if r.kind == "d"}
    logins: dict[date, dict[tuple[str, str], int]] = defaultdict(dict)
    devices: dict[date, dict[str, int]] = defaultdict(dict)
    for r in rows:
        if r.kind == "l":
            logins[r.day][(r.a, r.b)] = r.n1
        elif r.kind == "s":
            devices[r.day][r.a] = r.n1

    out = []
    for first, last in buckets(since, until, interval):
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        computed = [days[d] for d in span if d in days]
        end = computed[-1] if computed else None
        login_counts = {
            method: {
                outcome: sum(logins[d].get((method, outcome), 0) for d in span)
                for outcome in ("success", "failure")
            }
            for method in LOGIN_METHODS
        }
        out.append(
            {
                "start": first,
                "end": last,
                "dau": round(sum(r.n1 for r in computed) / len(computed), 1) if computed else None,
                "wau": end.n2 if end else None,
                "mau": end.n3 if end else None,
                "registrations": sum(r.n4 for r in computed),
                "accounts": end.n5 if end else None,
                "verified_share": _share(end.n6, end.n5) if end else None,
                "mfa_adoption": _share(end.n7, end.n5) if end else None,
                "logins": login_counts,
                "sessions_by_device": {
                    kind: sum(devices[d].get(kind, 0) for d in span) for kind in DEVICE_TYPES
                },
            }
        )
    cohorts: dict[date, dict[str, Any]] = {}
    for r in sorted((r for r in rows if r.kind == "r"), key=lambda r: (r.day, r.n1)):
        entry = cohorts.setdefault(r.day, {"cohort_week": r.day, "size": r.n2, "active": []})
        entry["active"].append(r.n3)
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
