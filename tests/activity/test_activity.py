"""Activity tracking: a daily rollup per account, buffered in memory and flushed, with
truncated addresses, the opt-out preference, the two activity routes and retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from atrium.activity.service import (
    activity_for_export,
    flush,
    list_activity_for_user,
)
from atrium.config import RetentionSettings
from atrium.context import AppContext
from atrium.core.activity import login_method, truncate_ip
from atrium.core.clock import FrozenClock
from atrium.core.storage import create_storage
from atrium.models import LoginDay, UserActivityDay
from atrium.retention.policies import POLICIES
from atrium.retention.service import apply_policy
from tests.factories import PASSWORD, login, register, signed_in, signed_in_as

ME = "/api/v1/users/me"


@pytest.fixture
def clock() -> FrozenClock:
    """Noon of a fixed day: the minutes a test moves the clock stay within that day
    (the default clock starts at the real time, which from 23:55 UTC crossed midnight)."""
    return FrozenClock(datetime(2026, 3, 18, 12, 0, tzinfo=UTC))


async def _rows(ctx: AppContext) -> list[UserActivityDay]:
    async with ctx.sessionmaker() as db:
        return list((await db.execute(select(UserActivityDay))).scalars())


async def _flush(ctx: AppContext) -> int:
    return await flush(ctx.sessionmaker, ctx.activity, ctx.clock)


def test_addresses_are_truncated_to_their_network() -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0/24"
    assert truncate_ip("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert truncate_ip("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert truncate_ip("203.0.113.77", ipv4_prefix=16) == "203.0.0.0/16"
    assert truncate_ip("testclient") is None
    assert truncate_ip(None) is None


def test_login_method_follows_the_session_methods() -> None:
    assert login_method(["pwd"]) == "password"
    assert login_method(["pwd", "otp", "mfa"]) == "mfa"
    assert login_method(["hwk", "user"]) == "passkey"
    assert login_method(["swk"]) == "passkey"
    assert login_method(["fed"]) == "social"
    assert login_method(["fed", "otp", "mfa"]) == "mfa"


async def test_requests_are_counted_in_memory_and_written_only_by_the_flush(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    for _ in range(3):
        assert (await client.get(ME, headers=auth)).status_code == 200

    assert await _rows(ctx) == []  # nothing written by the requests themselves

    assert await _flush(ctx) == 1
    (row,) = await _rows(ctx)
    assert row.day == clock.now().date()
    assert row.requests == 3
    assert row.logins == 1
    assert row.active_sessions == 1
    assert row.first_seen_at == clock.now()
    assert row.ip_prefix == "203.0.113.0/24"  # the client is 203.0.113.7


async def test_flushes_add_up_and_each_session_counts_once_per_day(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    started = clock.now()
    await client.get(ME, headers=auth)
    await _flush(ctx)
    clock.advance(minutes=5)
    await client.get(ME, headers=auth)  # the same session again, after a flush
    second = await login(client, "ada@example.com")
    await client.get(ME, headers={"Authorization": f"Bearer {second['access_token']}"})
    await _flush(ctx)

    (row,) = await _rows(ctx)
    assert row.requests == 3
    assert row.logins == 2
    assert row.active_sessions == 2
    assert row.first_seen_at == started
    assert row.last_seen_at == started + timedelta(minutes=5)


async def test_logins_are_counted_by_method_and_outcome(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    await login(client, "ada@example.com")
    for email in ("ada@example.com", "nobody@example.com"):
        response = await client.post(
            "/api/v1/auth/login", data={"username": email, "password": "wrong " + PASSWORD}
        )
        assert response.status_code == 401
    await _flush(ctx)

    async with ctx.sessionmaker() as db:
        rows = (await db.execute(select(LoginDay))).scalars().all()
    counts = {(r.day, r.method, r.outcome): r.count for r in rows}
    today = clock.now().date()
    assert counts == {(today, "password", "success"): 1, (today, "password", "failure"): 2}


async def test_an_account_that_opted_out_is_not_recorded(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    response = await client.patch(
        f"{ME}/preferences", json={"privacy": {"activity_tracking": False}}, headers=auth
    )
    assert response.status_code == 200
    assert response.json()["privacy"] == {"activity_tracking": False}
    await client.get(ME, headers=auth)
    await _flush(ctx)

    assert await _rows(ctx) == []
    body = (await client.get(f"{ME}/activity", headers=auth)).json()
    assert body["tracking"] is False
    assert body["items"] == []
    # Opting back in records again.
    await client.patch(
        f"{ME}/preferences", json={"privacy": {"activity_tracking": True}}, headers=auth
    )
    await client.get(ME, headers=auth)
    await _flush(ctx)
    assert len(await _rows(ctx)) == 1


async def test_own_activity_lists_days_newest_first(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await signed_in(client)
    first_day = clock.now().date()
    await _flush(ctx)
    clock.advance(days=1)
    tokens = await login(client, "ada@example.com")  # yesterday's access token expired
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    await client.get(ME, headers=auth)
    await client.get(ME, headers=auth)
    await _flush(ctx)

    response = await client.get(f"{ME}/activity", headers=auth)

    assert response.status_code == 200
    body = response.json()
    assert body["tracking"] is True
    assert body["to"] == clock.now().date().isoformat()
    assert [(d["day"], d["requests"], d["logins"]) for d in body["items"]] == [
        ((first_day + timedelta(days=1)).isoformat(), 2, 1),
        (first_day.isoformat(), 0, 1),
    ]
    only_first = await client.get(
        f"{ME}/activity",
        params={"from": first_day.isoformat(), "to": first_day.isoformat()},
        headers=auth,
    )
    assert [d["day"] for d in only_first.json()["items"]] == [first_day.isoformat()]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "invalid_range"),
        ({"from": "2024-01-01", "to": "2026-03-01"}, "invalid_range"),
        ({"from": "yesterday"}, "validation_error"),
    ],
)
async def test_bad_ranges_are_problems(
    client: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    auth = await signed_in(client)
    response = await client.get(f"{ME}/activity", params=params, headers=auth)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_admin_reads_an_account_activity_with_users_read(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await signed_in(client)
    ada_id = (await client.get(ME, headers=ada)).json()["id"]
    await _flush(ctx)
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")

    allowed = await client.get(f"/api/v1/admin/users/{ada_id}/activity", headers=moderator)
    refused = await client.get(f"/api/v1/admin/users/{ada_id}/activity", headers=ada)
    missing = await client.get(f"/api/v1/admin/users/{uuid.uuid4()}/activity", headers=moderator)

    assert allowed.status_code == 200
    assert allowed.json()["user_id"] == ada_id
    assert [d["logins"] for d in allowed.json()["items"]] == [1]
    assert refused.status_code == 403
    assert missing.status_code == 404
    assert missing.json()["code"] == "user_not_found"


async def test_activity_retention_deletes_days_older_than_the_limit_in_batches(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    user_id = uuid.UUID((await client.get(ME, headers=auth)).json()["id"])
    today = clock.now().date()
    async with ctx.sessionmaker() as db:
        for age in range(0, 50, 2):  # 25 days: 0, 2, ..., 48 days ago
            day = today - timedelta(days=age)
            at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            db.add(
                UserActivityDay(
                    user_id=user_id,
                    day=day,
                    first_seen_at=at,
                    last_seen_at=at,
                    requests=1,
                    logins=0,
                    active_sessions=1,
                    ip_prefix=None,
                )
            )
        await db.commit()

    settings = ctx.settings.model_copy(
        update={"retention": RetentionSettings(activity_days=30, batch_size=4)}
    )
    [policy] = [p for p in POLICIES if p.kind == "activity"]
    storage = create_storage(settings)
    dry = await apply_policy(ctx.sessionmaker, settings, policy, clock.now(), storage, dry_run=True)
    deleted = await apply_policy(ctx.sessionmaker, settings, policy, clock.now(), storage)
    would = dry.rows

    # 32, 34, ..., 48 days ago: 9 days are older than 30 days.
    assert would == deleted.rows == 9
    async with ctx.sessionmaker() as db:
        left = await list_activity_for_user(db, user_id)
        oldest = (await db.execute(select(func.min(UserActivityDay.day)))).scalar_one()
    assert len(left) == 16
    assert oldest == today - timedelta(days=30)
    assert left[0]["day"] == today.isoformat()
    assert set(left[0]) == {
        "day",
        "first_seen_at",
        "last_seen_at",
        "requests",
        "logins",
        "active_sessions",
        "ip_prefix",
    }


async def test_a_failed_flush_keeps_the_counts_for_the_next(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await client.get(ME, headers=auth)

    class Broken:
        def __call__(self) -> object:
            raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        await flush(Broken(), ctx.activity, ctx.clock)  # type: ignore[arg-type]
    assert ctx.activity.pending() == 2  # the account's day and the login counter

    await _flush(ctx)
    (row,) = await _rows(ctx)
    assert row.requests == 1
    assert row.logins == 1


async def test_the_export_reader_yields_every_day_oldest_first(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await signed_in(client)
    await _flush(ctx)
    clock.advance(days=1)
    await login(client, "ada@example.com")
    await _flush(ctx)
    (row, _) = sorted(await _rows(ctx), key=lambda r: r.day)

    async with ctx.sessionmaker() as db:
        batches = [batch async for batch in activity_for_export(db, row.user_id)]

    assert [[d["day"] for d in b] for b in batches] == [
        [row.day.isoformat(), (row.day + timedelta(days=1)).isoformat()]
    ]
