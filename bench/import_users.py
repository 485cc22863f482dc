"""Benchmark of ``atrium import users`` on PostgreSQL: writes a CSV of N accounts (default
100,000), imports it into a scratch database (COPY into a staging table, set checks, merge),
imports it again (every record an update), and records the figures in
``docs/benchmarks.md``.

    uv run python bench/import_users.py \\
        --server postgresql+asyncpg://postgres@127.0.0.1:5432/postgres --users 100000

Records carry a bcrypt hash (the same one: an import never hashes, it keeps hashes), a
name, a handle, the verified flag for 80 %, a second role for 1 % and a profile field for
10 %. The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import re
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.config import DatabaseSettings, Environment, Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine
from atrium.imports.formats import ImportFormat
from atrium.imports.service import import_users

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## User import"


async def _server(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def write_csv(path: Path, users: int) -> None:
    hashed = bcrypt.hashpw(b"bench passphrase", bcrypt.gensalt(10)).decode()
    header = ["email", "password_hash", "full_name", "username", "email_verified", "roles"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*header, "display_name"])
        for i in range(users):
            writer.writerow(
                [
                    f"user{i}@bench.example",
                    hashed,
                    f"Bench User {i}",
                    f"bench_{i}",
                    "true" if i % 5 else "false",
                    "moderator" if i % 100 == 0 else "",
                    f"User {i}" if i % 10 == 0 else "",
                ]
            )


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local PostgreSQL backend, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_import(settings: Settings, source: Path) -> tuple[float, float, float, str]:
    """(wall seconds, Python CPU seconds, PostgreSQL backend CPU seconds, summary)."""
    engine = create_engine(settings, statement_timeouts=False)
    try:
        async with engine.connect() as conn:  # the pool's one connection, reused below
            pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        pg_before, cpu_before = backend_cpu(pid), time.process_time()
        started = time.perf_counter()
        with source.open(newline="") as stream:
            outcome = await import_users(engine, stream, ImportFormat.csv, now=SystemClock().now())
        wall = time.perf_counter() - started
        assert outcome.ok, outcome.errors[:5]
        async with engine.connect() as conn:
            same = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        assert same == pid, "the import ran on another connection"
        return (
            wall,
            time.process_time() - cpu_before,
            backend_cpu(pid) - pg_before,
            f"{outcome.created} created, {outcome.updated} updated",
        )
    finally:
        await engine.dispose()


def record(users: int, runs: list[tuple[float, float, float, str]], mib: float) -> str:
    (first, py1, pg1, _), (again, py2, pg2, _) = runs
    load = os.getloadavg()[0]
    million = 1_000_000 / users * first
    cpu_million = 1_000_000 / users * (py1 + pg1)
    shared = " (the machine was shared: upper bounds)" if load > 1.5 else ""
    if users >= 1_000_000:
        verdict = (
            f"A million records: **{first:.0f} s** for the first import and **{again:.0f} s** "
            f"for the re-run (target: under 300 s), for {py1 + pg1:.0f} CPU seconds (Python "
            "plus the PostgreSQL backend, which mostly take turns)."
        )
    else:
        verdict = (
            f"Extrapolated to 1,000,000 accounts at the first run's rate: **{million:.0f} s** "
            f"of wall time and **{cpu_million:.0f} CPU seconds** (Python plus the PostgreSQL "
            "backend, which mostly take turns) — target: under 300 s. The work per record is "
            "constant (validation, one `COPY` row, index maintenance), so the time grows "
            f"about linearly. Measured at {users:,} only: `--users 1000000` measures it."
        )
    return f"""{SECTION}

Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/import_users.py --users {users}`: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL, default server settings; load average (1 min) at the end: {load:.2f}{shared}.

A CSV of {users:,} accounts ({mib:.0f} MiB; bcrypt hashes kept as they are, 80 % verified, 1 % with a second role, 10 % with a profile field) imported into an empty database with `atrium import users` (validation in Python, `COPY` into a staging table in batches of 10,000, set checks, then one `UPDATE … FROM`, one `INSERT … SELECT` and the grants and profiles with `ON CONFLICT`, all in one transaction):

| run | records | wall seconds | records/s | Python CPU s | PostgreSQL backend CPU s |
|---|---:|---:|---:|---:|---:|
| first import (every record created) | {users:,} | {first:.1f} | {users / first:,.0f} | {py1:.1f} | {pg1:.1f} |
| same file again (every record updated) | {users:,} | {again:.1f} | {users / again:,.0f} | {py2:.1f} | {pg2:.1f} |

{verdict}

"""


def write_doc(section: str) -> None:
    doc = DOC.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    doc = pattern.sub(section, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + section
    DOC.write_text(doc)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "ATRIUM_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    if not args.server:
        parser.error("--server (a PostgreSQL URL) is needed")
    name = f"atrium_bench_import_{uuid.uuid4().hex[:8]}"
    await _server(args.server, f'CREATE DATABASE "{name}"')
    url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                environment=Environment.development,
                data_dir=Path(tmp),
                database=DatabaseSettings(url=url, auto_migrate=False),
            )
            source = Path(tmp) / "users.csv"
            write_csv(source, args.users)
            mib = source.stat().st_size / 1_048_576
            runs = []
            for _ in range(2):
                runs.append(await timed_import(settings, source))
                print(f"{runs[-1][3]} in {runs[-1][0]:.1f} s")
        section = record(args.users, runs, mib)
        print(section)
        if not args.no_doc:
            write_doc(section)
    finally:
        await _server(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
