"""Benchmark of ``GET /api/v1/admin/analytics`` at scale: seeds N accounts (default
1,000,000) and a year of activity into a scratch PostgreSQL database with ``atrium seed``'s
generators (COPY), builds the rollups with the ``analytics.rollup`` job, then times the
report for several ranges and intervals, and writes p50/p95 into ``docs/benchmarks.md``.

    uv run python bench/analytics.py --users 1000000 --days 365

Requests go through the whole application in-process (httpx ASGI transport: routing,
token verification, permission check, queries, serialisation). The reference, measured
in the same process, is ``GET /api/v1/users/me`` (the cheapest authenticated call): the
ratio says what the report costs beyond the request itself. Target: p95 under 100 ms.
The scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import doc_section
import httpx
from sqlalchemy import func, make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.activity.rollups import run_rollup
from atrium.activity.seeding import seed_activity
from atrium.bootstrap import ensure_admin
from atrium.config import AuthSettings, DatabaseSettings, Environment, Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker
from atrium.core.jobs import JobContext
from atrium.main import create_app
from atrium.models import AnalyticsDay, UserActivityDay
from atrium.seed import seed

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Analytics at 1,000,000 accounts"
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "a long bench passphrase"


async def _server(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _time(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], params: dict[str, Any], n: int
) -> list[float]:
    await client.get(path, headers=headers, params=params)  # warm
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get(path, headers=headers, params=params)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return samples


async def run(args: argparse.Namespace) -> str:
    name = f"atrium_bench_analytics_{uuid.uuid4().hex[:8]}"
    await _server(args.server, f'CREATE DATABASE "{name}"')
    url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment=Environment.test,
            data_dir=Path(args.data_dir),
            database=DatabaseSettings(url=url, auto_migrate=False, pool_size=5),
            auth=AuthSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1),
        )
        print(f"seeding {args.users} accounts into {name} ...", file=sys.stderr)
        seeded = await seed(
            settings, args.users, progress=lambda d: print(f"\r{d}", end="", file=sys.stderr)
        )
        print(f"\nseeded in {seeded.seconds:.1f} s; activity ...", file=sys.stderr)
        engine = create_engine(settings, statement_timeouts=False)
        try:
            activity = await seed_activity(
                engine,
                settings,
                SystemClock(),
                args.days,
                progress=lambda s: print(f"\r{s}", end="", file=sys.stderr),
            )
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(select(func.count()).select_from(UserActivityDay))
                ).scalar_one()
                last = (
                    await conn.execute(select(AnalyticsDay).order_by(AnalyticsDay.day.desc()))
                ).first()
            # An incremental pass of the job as the worker runs it (the last two days).
            started = time.perf_counter()
            await run_rollup(
                JobContext(settings, SystemClock(), engine, create_sessionmaker(engine), {})
            )
            incremental = time.perf_counter() - started
        finally:
            await engine.dispose()
        print(f"\nactivity in {activity.seconds:.1f} s", file=sys.stderr)
        await ensure_admin(settings, ADMIN_EMAIL, ADMIN_PASSWORD)

        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                login = await client.post(
                    "/api/v1/auth/login",
                    data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                )
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                today = SystemClock().now().date()

                def span(days: int) -> dict[str, str]:
                    return {
                        "from": (today - timedelta(days=days - 1)).isoformat(),
                        "to": today.isoformat(),
                    }

                scenarios = [
                    ("last 30 days by day (the default)", {}),
                    ("last 90 days by day", span(90)),
                    ("last 365 days by day", span(365)),
                    ("last 365 days by week", {**span(365), "interval": "week"}),
                    ("last 365 days by month", {**span(365), "interval": "month"}),
                ]
                reference = await _time(client, "/api/v1/users/me", headers, {}, args.iterations)
                ref_p50 = statistics.median(reference)
                lines = []
                worst = 0.0
                for label, params in scenarios:
                    samples = await _time(
                        client, "/api/v1/admin/analytics", headers, params, args.iterations
                    )
                    p50, p95 = statistics.median(samples), _p(samples, 0.95)
                    worst = max(worst, p95)
                    lines.append(f"| {label} | {p50:.1f} | {p95:.1f} | {p50 / ref_p50:.2f} |")
                    print(lines[-1], file=sys.stderr)
        load = os.getloadavg()[0]
        assert last is not None
        return (
            f"{SECTION}\n\n"
            f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
            f"`uv run python bench/analytics.py --users {args.users} --days {args.days}`: "
            f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, PostgreSQL, in-process through the whole "
            f"application, {args.iterations} requests per row after a warm-up; load average "
            f"(1 min) at the end: {load:.2f} (the machine is shared: upper bounds).\n\n"
            f"| data | |\n|---|---|\n"
            f"| accounts | {seeded.users:,} (seeded in {seeded.seconds:.0f} s) |\n"
            f"| activity rows (account-days) over {args.days} days | {rows:,} |\n"
            f"| sessions, second factors | {activity.sessions:,}, {activity.mfa_factors:,} |\n"
            f"| activity seeded and rollups built (a year's backfill of the job) | "
            f"{activity.seconds:.0f} s |\n"
            f"| an incremental pass of `analytics.rollup` (the last two days, the "
            f"cohorts of 12 weeks) | {incremental:.1f} s |\n"
            f"| today's DAU / WAU / MAU | {last.dau:,} / {last.wau:,} / {last.mau:,} |\n\n"
            f"| `GET /api/v1/admin/analytics` | p50 ms | p95 ms | p50 / `GET /users/me` p50 |\n"
            f"|---|---:|---:|---:|\n"
            f"| reference: `GET /api/v1/users/me` | {ref_p50:.1f} | {_p(reference, 0.95):.1f} "
            f"| 1.00 |\n" + "\n".join(lines) + "\n\n"
            f"Worst p95: **{worst:.1f} ms** (target: under 100 ms). The report reads only the "
            f"rollup tables (a row per day, per day and login method, per day and device, "
            f"per cohort and week), so its cost follows the range, not the number of accounts.\n"
        )
    finally:
        if not args.keep:
            await _server(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_section(section: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, SECTION, section)


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "ATRIUM_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument("--no-write", action="store_true", help="Print, do not write the doc.")
    args = parser.parse_args()
    section = asyncio.run(run(args))
    print(section)
    if not args.no_write:
        write_section(section)


if __name__ == "__main__":
    main()
