"""Synthetic activity for ``atrium seed --activity-days N``: a year of daily rollups for
the accounts already seeded, then the analytics rollups built by the real job.

Distribution (deterministic for a given seed), per account from its creation (or the
first of the ``days``) to today or its deletion: 72 % never active, 20 % active on 1 % of
their days, 6 % on 6 %, 2 % on 35 % — about 4.6 activity days per account and year, a
DAU near 1.3 % of the accounts and a MAU near 9 %. Logins by method per day in proportion
(password 70 %, MFA 10 %, passkey 12 %, social 8 %; 6 % failures), sessions of the last 30
days with desktop, mobile and tablet user agents, and a verified TOTP factor for 3 % of
accounts. PostgreSQL: ``COPY``; SQLite: batched inserts.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from atrium.activity.rollups import run_rollup
from atrium.config import Settings
from atrium.core.clock import Clock
from atrium.core.db import create_sessionmaker
from atrium.core.jobs import JobContext
from atrium.models import AuthSession, LoginDay, MfaFactor, User, UserActivityDay

ENGAGEMENT = ((0.72, 0.0), (0.20, 0.01), (0.06, 0.06), (0.02, 0.35))
LOGIN_SHARE = (("password", 0.70), ("mfa", 0.10), ("passkey", 0.12), ("social", 0.08))
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
)
ACTIVITY_COLUMNS = [
    "user_id", "day", "first_seen_at", "last_seen_at", "requests", "logins",
    "active_sessions", "ip_prefix",
]  # fmt: skip
SESSION_COLUMNS = [
    "id", "user_id", "created_at", "last_used_at", "expires_at", "user_agent", "ip_address",
    "aal", "amr", "auth_time",
]  # fmt: skip
FACTOR_COLUMNS = ["id", "user_id", "type", "name", "created_at", "verified_at"]


@dataclass
class ActivitySeedResult:
    activity_days: int
    sessions: int
    mfa_factors: int
    seconds: float


async def _write(
    conn: AsyncConnection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table.__tablename__, records=rows, columns=columns)
    else:
        await conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])


def _rate(rng: random.Random) -> float:
    draw = rng.random()
    for share, rate in ENGAGEMENT:
        if draw < share:
            return rate
        draw -= share
    return 0.0


async def seed_activity(
    engine: AsyncEngine,
    settings: Settings,
    clock: Clock,
    days: int,
    *,
    random_seed: int = 0,
    batch_size: int = 20_000,
    progress: Callable[[str], None] | None = None,
) -> ActivitySeedResult:
    """Seed ``days`` days of activity for every account of ``engine``'s database, then run
    the ``analytics.rollup`` job over them."""
    started = time.perf_counter()
    now = clock.now()
    today = now.date()
    first = today - timedelta(days=days - 1)
    rng = random.Random(f"activity:{random_seed}")  # noqa: S311  # nosec B311 - synthetic data
    activity_total = sessions_total = factors_total = 0
    per_day = [0] * days
    batch: list[tuple[Any, ...]] = []
    sessions: list[tuple[Any, ...]] = []
    factors: list[tuple[Any, ...]] = []

    async def write() -> None:
        nonlocal activity_total, sessions_total, factors_total, batch, sessions, factors
        async with engine.begin() as conn:
            await _write(conn, UserActivityDay, ACTIVITY_COLUMNS, batch)
            await _write(conn, AuthSession, SESSION_COLUMNS, sessions)
            await _write(conn, MfaFactor, FACTOR_COLUMNS, factors)
        activity_total += len(batch)
        sessions_total += len(sessions)
        factors_total += len(factors)
        batch, sessions, factors = [], [], []
        if progress:
            progress(f"{activity_total} activity days")

    after: uuid.UUID | None = None
    while True:
        # Keyset pages of accounts, each read in a short transaction of its own (SQLite
        # would not let the writes commit under a long read).
        page = select(User.id, User.created_at, User.deleted_at).order_by(User.id)
        if after is not None:
            page = page.where(User.id > after)
        async with engine.connect() as reader:
            accounts = (await reader.execute(page.limit(batch_size))).all()
        if not accounts:
            break
        after = accounts[-1][0]
        for user_id, created_at, deleted_at in accounts:
            start = max(first, created_at.date())
            stop = min(today, deleted_at.date() if deleted_at else today)
            alive = (stop - start).days + 1
            if rng.random() < 0.03:
                at = created_at + timedelta(days=1)
                factors.append((uuid.uuid4(), user_id, "totp", "phone", at, at))
            rate = _rate(rng)
            if alive <= 0 or rate == 0.0:
                continue
            count = min(alive, max(0, round(rate * alive * rng.uniform(0.5, 1.5))))
            for offset in rng.sample(range(alive), count):
                day = start + timedelta(days=offset)
                seen = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                    seconds=rng.randrange(3600, 20 * 3600)
                )
                logins = 1 if rng.random() < 0.3 else 0
                batch.append(
                    (
                        user_id,
                        day,
                        seen,
                        seen + timedelta(seconds=rng.randrange(4 * 3600)),
                        rng.randrange(1, 60),
                        logins,
                        1 + (rng.random() < 0.1),
                        f"198.51.{rng.randrange(256)}.0/24",
                    )
                )
                per_day[(day - first).days] += 1
                if (today - day).days < 30 and logins:
                    sessions.append(
                        (
                            uuid.uuid4(),
                            user_id,
                            seen,
                            seen,
                            seen + timedelta(days=30),
                            AGENTS[rng.randrange(len(AGENTS))],
                            "198.51.100.7",
                            1,
                            '["pwd"]',
                            seen,
                        )
                    )
        if len(batch) >= batch_size:
            await write()
    await write()
    login_rows = []
    for i, active in enumerate(per_day):
        day = first + timedelta(days=i)
        attempts = int(active * 0.3)
        for method, share in LOGIN_SHARE:
            tried = int(attempts * share)
            failed = int(tried * 0.06)
            login_rows.append((day, method, "success", tried - failed))
            login_rows.append((day, method, "failure", failed))
    async with engine.begin() as conn:
        await _write(conn, LoginDay, ["day", "method", "outcome", "count"], login_rows)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("user_activity_day", "auth_session", "mfa_factor", "login_day"):
                await conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    if progress:
        progress("analytics rollups")
    sessionmaker = create_sessionmaker(engine)
    await run_rollup(JobContext(settings, clock, engine, sessionmaker, {}))
    return ActivitySeedResult(
        activity_total, sessions_total, factors_total, time.perf_counter() - started
    )
