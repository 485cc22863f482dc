"""Benchmark: an admin broadcast to every account (fan-out on read, and batched ``INSERT …
SELECT`` in the worker, docs/architecture.md "Broadcasts"). Written into
``docs/benchmarks.md``.

Seeds ``--users`` accounts (``atrium seed``) in a fresh PostgreSQL database (or reuses
``--database``), records one broadcast, and while
:func:`atrium.notifications.broadcast.fan_out` runs, ``--sample`` random accounts read
their unread count: the time until every one of them has seen it (target: visible to
1,000,000 accounts within 60 s), the cost of those reads against the same reads with no
broadcast in progress, and the worker's time to the last account.

    uv run python bench/broadcast.py --server postgresql+asyncpg://postgres@127.0.0.1:5432 \\
        --users 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import doc_section
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium import migrate
from atrium.config import DatabaseSettings, Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.models import Notification, NotificationBroadcast, User
from atrium.notifications.broadcast import BROADCAST_BATCH, MAX_BATCH, fan_out
from atrium.notifications.repository import NotificationRepository
from atrium.notifications.service import catch_up
from atrium.seed import seed

SECTION = "## Admin broadcast: fan-out to every account"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, title, body)


async def create_database(server: str, name: str) -> str:
    import asyncpg

    dsn = server.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(f"{dsn}/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{server}/{name}"


async def reads(
    sessionmaker: async_sessionmaker[AsyncSession], accounts: list[uuid.UUID], concurrency: int
) -> tuple[list[float], int]:
    """Each account's unread count as the API reads it (``catch_up``, then the count),
    ``concurrency`` at a time: (seconds per read, accounts that counted one or more)."""
    semaphore = asyncio.Semaphore(concurrency)
    seconds: list[float] = []
    seen = 0

    async def one(user_id: uuid.UUID) -> None:
        nonlocal seen
        async with semaphore:
            started = time.perf_counter()
            async with unit_of_work(sessionmaker) as db:
                await catch_up(db, user_id)
                count = await NotificationRepository(db).unread_count(user_id, ())
            seconds.append(time.perf_counter() - started)
            seen += count > 0

    await asyncio.gather(*(one(a) for a in accounts))
    return seconds, seen


async def run(url: str, users: int, data_dir: Path, sample: int) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database=DatabaseSettings(url=url),
    )
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(settings, statement_timeouts=False)
    sessionmaker = create_sessionmaker(engine)
    out: dict[str, Any] = {}
    async with sessionmaker() as db:
        have = (await db.execute(select(func.count()).select_from(User))).scalar_one()
    started = time.perf_counter()
    if have < users:
        await seed(settings, users - have, batch_size=20_000, random_seed=0)
    out["seeded"] = time.perf_counter() - started if have < users else None
    async with engine.begin() as conn:  # a database kept from an earlier run starts empty
        await conn.execute(text("TRUNCATE notification, notification_broadcast"))
    async with sessionmaker() as db:
        out["audience"] = (
            await db.execute(
                select(func.count()).where(User.status == "active", User.deleted_at.is_(None))
            )
        ).scalar_one()
        accounts = list(
            (
                await db.execute(
                    select(User.id)
                    .where(User.status == "active", User.deleted_at.is_(None))
                    .order_by(func.random())
                    .limit(sample)
                )
            ).scalars()
        )
    # Reference, same process: the same reads with no broadcast in progress.
    out["reference"], _ = await reads(sessionmaker, accounts, 8)
    clock = SystemClock()
    broadcast_id = uuid.uuid4()
    async with unit_of_work(sessionmaker) as db:
        db.add(
            NotificationBroadcast(
                id=broadcast_id,
                audience="all",
                role_id=None,
                category="product_updates",
                title="Maintenance",
                body="Sunday 02:00 UTC",
                link=None,
                actor_id=None,
                created_at=clock.now(),
            )
        )
    recorded = time.perf_counter()

    async def fan_out_all() -> float:
        while not await fan_out(sessionmaker, clock, broadcast_id, budget_seconds=24.0):
            pass
        return time.perf_counter() - recorded

    worker = asyncio.create_task(fan_out_all())
    out["during"], out["seen"] = await reads(sessionmaker, accounts, 8)
    out["all_seen_after"] = time.perf_counter() - recorded
    out["fan_out"] = await worker
    async with sessionmaker() as db:
        out["written"] = (
            await db.execute(select(func.count()).select_from(Notification))
        ).scalar_one()
    await engine.dispose()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=1000, help="accounts that read")
    parser.add_argument(
        "--database", help="reuse this database (seeded up to --users; its notices emptied)"
    )
    args = parser.parse_args()
    if args.database:
        url = f"{args.server}/{args.database}"
    else:
        url = asyncio.run(create_database(args.server, f"atrium_bench_broadcast_{os.getpid()}"))
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(run(url, args.users, Path(tmp) / "var", args.sample))
    rate = out["written"] / out["fan_out"]
    ref_p50, during_p50 = pct(out["reference"], 0.5), pct(out["during"], 0.5)
    seeded = "kept from an earlier run" if out["seeded"] is None else f"in {out['seeded']:,.0f} s"
    lines = [
        SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/broadcast.py "
        f"--users {args.users}`: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work (load average at the end "
        f"{os.getloadavg()[0]:.2f}); PostgreSQL. One broadcast to every account; while the "
        f"worker fans it out (batches of {BROADCAST_BATCH:,} growing to at most "
        f"{MAX_BATCH:,} accounts), {args.sample:,} random accounts read their unread count "
        "(8 at a time) as the API does: catch up (fan-out on read), then count. Reference, "
        "same process: the same reads before the broadcast.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| accounts (active) | {args.users:,} ({out['audience']:,}), seeded {seeded} |",
        f"| sampled accounts that saw the broadcast on their first read | "
        f"{out['seen']:,} of {args.sample:,} |",
        f"| broadcast recorded → every sampled account had read it | "
        f"{out['all_seen_after']:,.1f} s (target ≤ 60 s) |",
        f"| unread-count read, p50 / p99, no broadcast (reference) | "
        f"{ref_p50:,.1f} ms / {pct(out['reference'], 0.99):,.1f} ms |",
        f"| same while the broadcast is in progress | "
        f"{during_p50:,.1f} ms / {pct(out['during'], 0.99):,.1f} ms "
        f"({during_p50 / ref_p50:.1f}× the reference at p50) |",
        f"| worker fan-out: notices written | {out['written']:,} |",
        f"| worker fan-out: time to the last account | {out['fan_out']:,.1f} s |",
        f"| worker fan-out: rate | {rate:,.0f} notices/s |",
    ]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
