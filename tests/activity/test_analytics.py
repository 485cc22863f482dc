"""Analytics from the rollups: every figure of a small data set computed by hand.

Today is Wednesday 2026-03-18 12:00 UTC. Accounts (created):
  A 2026-03-02 (verified, TOTP verified on 03-03)   B 2026-03-03 (verified)
  C 2026-03-10                                        D 2026-03-16 (verified, deleted 03-17 10:00)
  the admin who reads the report, registered today (not verified)
Active days: A 02, 09, 12, 17 · B 03, 17, 18 · C 10, 11 · D 16 · the admin 18 (its login).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from atrium.activity.rollups import run_rollup
from atrium.activity.service import flush
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.jobs import JobContext
from atrium.models import AuthSession, MfaFactor, UserActivityDay
from tests.factories import insert_user, signed_in, signed_in_as

TODAY = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
ANALYTICS = "/api/v1/admin/analytics"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(TODAY)


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def activity_day(user_id: uuid.UUID, day: int, requests: int = 5) -> UserActivityDay:
    """The activity row of ``user_id`` on 2026-03-``day`` (seen 10:00 to 11:00)."""
    return UserActivityDay(
        user_id=user_id,
        day=date(2026, 3, day),
        first_seen_at=at(day),
        last_seen_at=at(day, 11),
        requests=requests,
        logins=0,
        active_sessions=1,
        ip_prefix="203.0.113.0/24",
    )


async def _seed(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    a = await insert_user(ctx, created_at=at(2), email_verified_at=at(2, 11))
    b = await insert_user(ctx, created_at=at(3), email_verified_at=at(3, 11))
    c = await insert_user(ctx, created_at=at(10))
    d = await insert_user(ctx, created_at=at(16), email_verified_at=at(16, 11), deleted_at=at(17))
    days = {a: (2, 9, 12, 17), b: (3, 17, 18), c: (10, 11), d: (16,)}
    async with ctx.sessionmaker() as db:
        for user_id, active in days.items():
            for n in active:
                db.add(activity_day(user_id, n))
        db.add(
            MfaFactor(
                id=uuid.uuid4(),
                user_id=a,
                type="totp",
                name="phone",
                secret_encrypted=None,
                created_at=at(3),
                verified_at=at(3),
            )
        )
        for user_id, agent in ((a, IPHONE), (b, LINUX_CHROME)):
            db.add(
                AuthSession(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    created_at=at(17),
                    last_used_at=at(17),
                    expires_at=at(17) + timedelta(days=30),
                    user_agent=agent,
                    ip_address="203.0.113.9",
                    aal=1,
                    amr=["pwd"],
                    auth_time=at(17),
                )
            )
        await db.commit()
    buffer = ctx.activity
    buffer.login("password", True, a, at(17))
    buffer.login("password", False, None, at(17))
    buffer.login("password", False, None, at(17, 11))
    buffer.login("mfa", True, a, at(17))
    buffer.login("passkey", False, b, at(18, 9))
    buffer.login("social", True, c, at(10))
    # The admin registers and logs in today through the API (a password login, a session
    # with the user agent "pytest": device "other"), then the buffer is flushed.
    _, admin = await signed_in_as(client, ctx, "boss@example.com", "admin")
    await flush(ctx.sessionmaker, buffer, ctx.clock)
    await run_rollup(JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {}))
    return admin


def _logins(**given: tuple[int, int]) -> dict[str, dict[str, int]]:
    out = {m: {"success": 0, "failure": 0} for m in ("password", "mfa", "passkey", "social")}
    for method, (ok, failed) in given.items():
        out[method] = {"success": ok, "failure": failed}
    return out


def _devices(**given: int) -> dict[str, int]:
    return {k: given.get(k, 0) for k in ("desktop", "mobile", "tablet", "bot", "other")}


async def test_daily_figures(client: httpx.AsyncClient, ctx: AppContext) -> None:
    admin = await _seed(client, ctx)

    response = await client.get(
        ANALYTICS, params={"from": "2026-03-15", "to": "2026-03-18"}, headers=admin
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"], body["interval"]) == ("2026-03-15", "2026-03-18", "day")
    by_day: dict[str, dict[str, Any]] = {b["start"]: b for b in body["buckets"]}
    assert list(by_day) == ["2026-03-15", "2026-03-16", "2026-03-17", "2026-03-18"]
    # dau; wau counts the 7 days ending that day, mau the 30
    assert by_day["2026-03-17"]["wau"] == 4  # 11..17: C (11), A, D, B
    assert by_day["2026-03-15"]["wau"] == 2
    assert by_day["2026-03-16"]["wau"] == 3  # 10..16: C, A, D
    assert by_day["2026-03-18"]["wau"] == 4  # 12..18: A, D, B, admin (C's last day is 11)
    assert [b["dau"] for b in by_day.values()] == [0, 1, 2, 2]
    assert [b["mau"] for b in by_day.values()] == [3, 4, 4, 5]
    assert [b["registrations"] for b in by_day.values()] == [0, 1, 0, 1]
    # At each day's end: accounts not deleted, verified share, MFA adoption.
    assert [b["accounts"] for b in by_day.values()] == [3, 4, 3, 4]
    assert [b["verified_share"] for b in by_day.values()] == [0.6667, 0.75, 0.6667, 0.5]
    assert [b["mfa_adoption"] for b in by_day.values()] == [0.3333, 0.25, 0.3333, 0.25]
    assert by_day["2026-03-17"]["logins"] == _logins(password=(1, 2), mfa=(1, 0))
    assert by_day["2026-03-18"]["logins"] == _logins(password=(1, 0), passkey=(0, 1))
    assert by_day["2026-03-17"]["sessions_by_device"] == _devices(mobile=1, desktop=1)
    assert by_day["2026-03-18"]["sessions_by_device"] == _devices(other=1)


async def test_weekly_buckets_and_retention_cohorts(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _seed(client, ctx)

    response = await client.get(
        ANALYTICS,
        params={"from": "2026-03-02", "to": "2026-03-18", "interval": "week"},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    weeks = body["buckets"]
    assert [(w["start"], w["end"]) for w in weeks] == [
        ("2026-03-02", "2026-03-08"),
        ("2026-03-09", "2026-03-15"),
        ("2026-03-16", "2026-03-18"),  # clipped to `to`
    ]
    # Mean DAU: 2/7, 4/7, 5/3 (rounded to one decimal).
    assert [w["dau"] for w in weeks] == [0.3, 0.6, 1.7]
    assert [(w["wau"], w["mau"]) for w in weeks] == [(2, 2), (2, 3), (4, 5)]
    assert [w["registrations"] for w in weeks] == [2, 1, 2]
    assert weeks[1]["logins"] == _logins(social=(1, 0))
    assert weeks[2]["logins"] == _logins(password=(2, 2), mfa=(1, 0), passkey=(0, 1))
    assert weeks[2]["sessions_by_device"] == _devices(mobile=1, desktop=1, other=1)
    assert (weeks[2]["accounts"], weeks[2]["verified_share"]) == (4, 0.5)
    # Cohorts: week of 03-02 (A, B): both active in week 0, A in week 1, both in week 2.
    # Week of 03-09 (C): active in week 0 only. Week of 03-16 (D, admin): both in week 0.
    assert body["retention"] == [
        {"cohort_week": "2026-03-02", "size": 2, "active": [2, 1, 2], "rates": [1.0, 0.5, 1.0]},
        {"cohort_week": "2026-03-09", "size": 1, "active": [1, 0], "rates": [1.0, 0.0]},
        {"cohort_week": "2026-03-16", "size": 2, "active": [2], "rates": [1.0]},
    ]


async def test_the_last_days_of_a_week_count_in_that_week(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """A week offset is the whole weeks from the cohort's Monday (floor division): the
    Sunday after it is week 0 and the next Sunday week 1. A division that rounded put
    Thursday to Sunday a week late (on PostgreSQL, whose integer cast rounds)."""
    e = await insert_user(ctx, created_at=at(2))  # Monday 2026-03-02
    f = await insert_user(ctx, created_at=at(3))
    async with ctx.sessionmaker() as db:
        db.add(activity_day(e, 8, requests=1))  # Sunday of week 0
        db.add(activity_day(f, 15, requests=1))  # Sunday of week 1
        await db.commit()
    _, admin = await signed_in_as(client, ctx, "boss@example.com", "admin")
    await run_rollup(JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {}))

    response = await client.get(
        ANALYTICS, params={"from": "2026-03-02", "to": "2026-03-08"}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert response.json()["retention"] == [
        {"cohort_week": "2026-03-02", "size": 2, "active": [1, 1, 0], "rates": [0.5, 0.5, 0.0]},
    ]


async def test_monthly_bucket_and_a_rerun_of_the_job_changes_nothing(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    admin = await _seed(client, ctx)
    params = {"from": "2026-02-20", "to": "2026-03-18", "interval": "month"}
    first = (await client.get(ANALYTICS, params=params, headers=admin)).json()

    await run_rollup(JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {}))
    again = (await client.get(ANALYTICS, params=params, headers=admin)).json()

    assert again == first
    february, march = first["buckets"]
    assert (february["start"], february["end"]) == ("2026-02-20", "2026-02-28")
    assert february["dau"] is None  # before the first account: the job computed no day
    assert february["registrations"] == 0
    assert (march["start"], march["end"]) == ("2026-03-01", "2026-03-18")
    assert march["registrations"] == 5
    assert (march["wau"], march["mau"]) == (4, 5)


async def test_analytics_needs_the_analytics_read_permission(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await signed_in(client)
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")

    for headers in (user, moderator):
        response = await client.get(ANALYTICS, headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert (await client.get(ANALYTICS)).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-18", "to": "2026-03-01"},
        {"from": "2024-01-01", "to": "2026-03-01", "interval": "day"},
        {"interval": "year"},
    ],
)
async def test_bad_parameters_are_422_problems(
    client: httpx.AsyncClient, ctx: AppContext, params: dict[str, str]
) -> None:
    _, admin = await signed_in_as(client, ctx, "boss@example.com", "admin")
    response = await client.get(ANALYTICS, params=params, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
