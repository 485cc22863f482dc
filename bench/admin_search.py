"""Benchmark of the admin user list at scale: seeds N users (default 1,000,000) into a
scratch PostgreSQL database, then times ``GET /api/v1/admin/users`` for a search term,
filters, sorts and deep paging, and writes p50/p95 into ``docs/benchmarks.md``.

    uv run python bench/admin_search.py \\
        --server postgresql+asyncpg://postgres@127.0.0.1:5432/postgres --users 1000000

Requests go through the whole application in-process (httpx ASGI transport: routing,
token verification, permission check, queries, serialisation), with the in-process cache;
the scratch database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import doc_section
import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.bootstrap import ensure_admin
from atrium.config import AuthSettings, DatabaseSettings, Environment, Settings
from atrium.main import create_app
from atrium.seed import SeedResult, seed

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Admin user list at 1,000,000 users"
ADMIN_EMAIL = "bench-admin@example.com"

# What the rows mean; kept with the generator so that a new run keeps it.
READING = """### Reading the numbers

- Every query stays flat with depth: page 201 (after 10,000 rows) costs what page 1 costs,
  because the cursor is a keyset position, not an OFFSET.
- **A role filter with any sort** reads the role's holders in order from one of
  `user_role`'s `(role_id, <sort key>, user_id)` indexes, then fetches only the page's
  accounts: a role of 0.05 %, 0.5 % or 100 % of accounts costs about the same. The sort keys
  are copied into each grant: `created_at` never changes, and `email_normalized` and
  `last_login_at` are kept equal to the account's by a trigger on `user_account`
  (migration 0005). Before that copy, `role=moderator & sort=email` measured p95 119 ms on
  an idle machine (PostgreSQL had to either probe `user_role` for ~17,000 accounts walking
  the email index, or fetch all 5,000 holders and sort them).
- Atrium's connections run with `max_parallel_workers_per_gather = 0`
  (`ATRIUM_DATABASE__PARALLEL_WORKERS_PER_GATHER`). With PostgreSQL's default (2),
  `role=user & status=suspended & sort=-last_login_at` measured p95 35 ms and
  `role=moderator & q=lovelace & sort=email` 42–47 ms, because the planner started workers
  for them; without, 13.6 ms and 22 ms for the same queries in `EXPLAIN ANALYZE`.
- The slowest rows combine a filter that the chosen index cannot apply with a sort or role
  index (`role=user & status=suspended`, `role=moderator & q=lovelace`): PostgreSQL walks
  the index and checks each account until the page is full, a few thousand probes.
- A search term of one or two characters cannot use the trigram indexes: it is fast when
  it is common (the sort index fills a page quickly) and scans when it is rare.
- Seeding ends with `VACUUM (ANALYZE)`, so index-only scans of `user_role` need no heap
  fetches right after a bulk load.
"""
ADMIN_PASSWORD = "bench admin passphrase 1"


async def _server(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _time(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any], n: int
) -> tuple[list[float], int]:
    for _ in range(3):  # warm-up: caches, plans
        r = await client.get("/api/v1/admin/users", headers=headers, params=params)
        assert r.status_code == 200, r.text
    samples = []
    items = 0
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get("/api/v1/admin/users", headers=headers, params=params)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
        items = len(r.json()["items"])
    return samples, items


async def _deep_cursor(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any], pages: int
) -> tuple[list[float], str]:
    """Follow the cursor ``pages`` times; the time of each page and the last cursor."""
    samples = []
    cursor: str | None = None
    for _ in range(pages):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        t = time.perf_counter()
        r = await client.get("/api/v1/admin/users", headers=headers, params=query)
        samples.append((time.perf_counter() - t) * 1000)
        cursor = r.json()["next_cursor"]
        assert cursor
    assert cursor is not None
    return samples, cursor


async def bench_database(args: argparse.Namespace) -> tuple[str, str]:
    """``(url, name)`` of the database to measure: ``--existing`` (already seeded with
    `atrium seed`, sparing the shared machine a reload; name ""), or a new one to drop."""
    if args.existing:
        return args.existing, ""
    name = f"atrium_bench_{uuid.uuid4().hex[:8]}"
    await _server(args.server, f'CREATE DATABASE "{name}"')
    return make_url(args.server).set(database=name).render_as_string(hide_password=False), name


async def run(args: argparse.Namespace) -> str:
    url, name = await bench_database(args)
    lines: list[str] = []
    load = 0.0
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment=Environment.test,
            data_dir=Path(args.data_dir),
            database=DatabaseSettings(url=url, auto_migrate=False, pool_size=5),
            auth=AuthSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1),
        )
        if args.existing:
            result = await _existing(url, args.seed_seconds)
        else:
            print(f"seeding {args.users} users into {name} ...", file=sys.stderr)
            result = await seed(
                settings,
                args.users,
                progress=lambda d: print(f"\r{d}", end="", file=sys.stderr),
            )
            print(f"\nseeded in {result.seconds:.1f} s", file=sys.stderr)
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
                recent = (datetime.now(UTC) - timedelta(days=90)).isoformat()
                scenarios: list[tuple[str, dict[str, Any]]] = [
                    ("first page, newest first (default)", {}),
                    ("q=lovelace (surname, ~1 % of rows)", {"q": "lovelace"}),
                    ("q=hopper4242 (rare: a few rows)", {"q": "hopper4242"}),
                    ("q=corp.example (email domain, ~20 % of rows)", {"q": "corp.example"}),
                    (
                        "q=ada & status=active & sort=email",
                        {"q": "ada", "status": "active", "sort": "email"},
                    ),
                    ("status=suspended (~2 %)", {"status": "suspended"}),
                    ("status=deleted (~0.5 %)", {"status": "deleted"}),
                    ("role=admin (~0.05 %)", {"role": "admin"}),
                    ("role=moderator (~0.5 %)", {"role": "moderator"}),
                    (
                        "role=user (everyone) & status=suspended",
                        {"role": "user", "status": "suspended"},
                    ),
                    ("role=moderator & sort=email", {"role": "moderator", "sort": "email"}),
                    (
                        "role=moderator & sort=-last_login_at",
                        {"role": "moderator", "sort": "-last_login_at"},
                    ),
                    ("role=admin & sort=-email", {"role": "admin", "sort": "-email"}),
                    ("role=user (everyone) & sort=email", {"role": "user", "sort": "email"}),
                    (
                        "role=user & status=suspended & sort=-last_login_at",
                        {"role": "user", "status": "suspended", "sort": "-last_login_at"},
                    ),
                    (
                        "role=moderator & q=lovelace & sort=email",
                        {"role": "moderator", "q": "lovelace", "sort": "email"},
                    ),
                    (
                        "role=user & sort=last_login_at (never-logged-in last)",
                        {"role": "user", "sort": "last_login_at"},
                    ),
                    (
                        "email_verified=false & created in the last 90 days",
                        {"email_verified": "false", "created_after": recent},
                    ),
                    ("sort=email", {"sort": "email"}),
                    ("sort=-last_login_at", {"sort": "-last_login_at"}),
                    ("sort=created_at (oldest first)", {"sort": "created_at"}),
                ]
                rows = []
                load = os.getloadavg()[0]
                for label, params in scenarios:
                    params = {"limit": 50, **params}
                    samples, items = await _time(client, headers, params, args.iterations)
                    rows.append((label, samples, items))
                    print(f"{label}: p50 {_pct(samples, 50):.1f} ms", file=sys.stderr)
                # Deep paging: 200 pages of 50 (10,000 rows) following the cursor, then the
                # page after 10,000 rows timed repeatedly.
                deep: list[tuple[str, dict[str, Any]]] = [
                    ("sort=-created_at", {"sort": "-created_at"}),
                    ("sort=email", {"sort": "email"}),
                    ("sort=-last_login_at", {"sort": "-last_login_at"}),
                    ("role=user & sort=email", {"role": "user", "sort": "email"}),
                    ("role=user & sort=-last_login_at", {"role": "user", "sort": "-last_login_at"}),
                ]
                for label, extra in deep:
                    params = {"limit": 50, **extra}
                    walk, cursor = await _deep_cursor(client, headers, params, args.deep_pages)
                    rows.append(
                        (
                            f"{label}: each of the first {args.deep_pages} pages (cursor walk)",
                            walk,
                            50,
                        )
                    )
                    samples, items = await _time(
                        client, headers, {**params, "cursor": cursor}, args.iterations
                    )
                    rows.append(
                        (
                            f"{label}: page {args.deep_pages + 1} (after "
                            f"{args.deep_pages * 50:,} rows)",
                            samples,
                            items,
                        )
                    )
                    print(f"deep {label}: p50 {_pct(samples, 50):.1f} ms", file=sys.stderr)
    finally:
        if not args.keep and not args.existing:
            await _server(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    invocation = " --existing URL" if args.existing else f" --users {args.users}"
    pg_version = await _pg_version(args.server)
    cpu = _cpu()
    lines += [
        SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/admin_search.py"
        f"{invocation}`: {cpu}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {pg_version}, default server settings. Load average "
        f"(1 min) when the timed requests began: {load:.2f}; anything near or above the "
        "core count means other work shared the machine and the figures are upper bounds.",
        "",
        f"Seeding {result.users:,} users, {result.role_grants:,} role grants and "
        f"{result.audit_events:,} audit events with `atrium seed` (COPY, GIN trigram indexes "
        f"built after the load, VACUUM ANALYZE): **{result.seconds:.0f} s**"
        + (
            " (seeded beforehand with `atrium seed --users`, the time it reported; the "
            "benchmark then ran with `--existing`)."
            if args.existing
            else "."
        ),
        "",
        "Each row: `GET /api/v1/admin/users?limit=50&…` through the whole application "
        f"in-process (auth, permission check, queries, JSON), {args.iterations} timed requests "
        "after 3 warm-up requests. No request counts rows; every page is one keyset query plus "
        "one query for the roles of its 50 accounts.",
        "",
        "| query | rows | p50 (ms) | p95 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for label, samples, items in rows:
        lines.append(f"| {label} | {items} | {_pct(samples, 50):.1f} | {_pct(samples, 95):.1f} |")
    worst = max(_pct(s, 95) for _, s, _ in rows)
    lines += [
        "",
        f"Worst p95: {worst:.1f} ms (target: under 50 ms).",
        "",
        READING,
    ]
    return "\n".join(lines)


async def _existing(url: str, seconds: float) -> SeedResult:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            counts = [
                int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())  # noqa: S608
                for t in ("user_account", "user_role", "audit_event")
            ]
    finally:
        await engine.dispose()
    return SeedResult(counts[0], counts[1], counts[2], seconds)


async def _pg_version(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            version = str((await conn.execute(text("SHOW server_version"))).scalar_one())
    finally:
        await engine.dispose()
    return f"PostgreSQL {version.split()[0]}"


def _cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        match = re.search(r"model name\s*:\s*(.+)", info)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--deep-pages", type=int, default=200)
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    parser.add_argument("--existing", help="URL of a database already seeded: no new seed.")
    parser.add_argument(
        "--seed-seconds",
        type=float,
        default=0.0,
        help="With --existing: the time `atrium seed` reported.",
    )
    parser.add_argument("--no-write", action="store_true", help="Print, do not write the doc.")
    args = parser.parse_args()
    section = asyncio.run(run(args))
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"written to {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
