"""Benchmark of the raffles application: ticket purchases per second at 200 concurrent
buyers (p50/p99 latency), and the public raffle list at 10,000 raffles; written into
``docs/benchmarks.md``.

One ``atrium serve`` (1 worker) with ``ATRIUM_APPS='["raffles"]'`` on PostgreSQL (a fresh
database on ``BENCH_PG``) or, with ``--sqlite``, the embedded default. Stripe is the fake
Stripe API of the test suite on loopback (``tests/apps/raffles/fake_stripe.py``), driven by
the real ``stripe`` library inside the server, so a purchase costs its real two
transactions plus one HTTP round trip to "Stripe".

    uv run python bench/raffles.py                       # 200 buyers, 20 s, 10,000 raffles
    uv run python bench/raffles.py --buyers 20 --duration 5 --raffles 1000 --sqlite  # small
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import doc_section  # noqa: E402
from run import (  # noqa: E402
    fresh_database,
    install_cleanup,
    launch,
    psql,
    stop_all,
    wait_ready,
)
from tests.apps.raffles.fake_stripe import API_KEY, WEBHOOK_SECRET  # noqa: E402

from atrium.apps.raffles.models import Raffle  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Raffles: purchases and the public list"
PORT = 8231
STRIPE_PORT = 8232
REFERENCE = "one raffle, `GET /raffles/{id}` (reference)"
PASSWORD = "bench raffle passphrase 1"  # nosec B105
ADMIN = "bench-raffles-admin@example.com"


def write_section(body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, SECTION, body)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed_raffles(db_url: str, count: int) -> None:
    """``count`` published raffles straight into the table (open, varied prices and closes)."""
    engine = create_async_engine(db_url)
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "title": f"Seeded raffle {i}",
            "description": "",
            "prize_description": "A prize.",
            "terms": "",
            "image_file_ids": [],
            "currency": "EUR",
            "ticket_price": 100 + (i * 37) % 5000,
            "total_tickets": 1000,
            "max_per_account": 10,
            "prizes": 1,
            "opens_at": now - timedelta(days=1),
            "closes_at": now + timedelta(minutes=10 + (i * 7919) % 100_000),
            "status": "open" if i % 10 else "drawn",
            "tickets_sold": 0,
            "tickets_reserved": 0,
            "created_at": now - timedelta(seconds=i),
            "updated_at": now,
        }
        for i in range(count)
    ]
    async with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            await conn.execute(insert(Raffle), rows[start : start + 1000])
    await engine.dispose()


async def verify_emails(db_url: str) -> None:
    engine = create_async_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE user_account SET email_verified_at = created_at"))
    await engine.dispose()


async def buyers(base: str, n: int) -> list[dict[str, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(i: int) -> None:
            r = await client.post(
                "/api/v1/auth/register",
                json={"email": f"buyer{i}@bench.example", "password": PASSWORD},
            )
            assert r.status_code in (201, 202, 409), r.text

        for start in range(0, n, 8):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 8))))
    return [{"email": f"buyer{i}@bench.example"} for i in range(n)]


async def login_all(base: str, emails: list[str]) -> list[dict[str, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(email: str) -> dict[str, str]:
            r = await client.post(
                "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

        out = []
        for start in range(0, len(emails), 8):
            out += await asyncio.gather(*(one(e) for e in emails[start : start + 8]))
        return out


def server_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the server's processes (its process group:
    granian's main process and its worker), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5, pgrp (after pid and comm)
                total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def lock_waits(db_url: str, stop: asyncio.Event) -> list[int]:
    """Every 50 ms, how many sessions of the benchmark's database wait on a lock
    (``pg_stat_activity.wait_event_type = 'Lock'``: a row lock, for a purchase)."""
    engine = create_async_engine(db_url)
    samples: list[int] = []
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as conn:
        while not stop.is_set():
            samples.append(int((await conn.execute(query)).scalar_one()))
            await conn.commit()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    await engine.dispose()
    return samples


async def load(
    base: str,
    headers: list[dict[str, str]],
    duration: float,
    send: Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]],
    expected: int,
    db_url: str | None = None,
) -> tuple[float, list[float], collections.Counter[int], list[int]]:
    """Each client sends one request after another for ``duration`` seconds: (requests/s,
    latencies, the statuses of answers other than ``expected``, lock-wait samples when
    ``db_url``)."""
    latencies: list[float] = []
    errors: collections.Counter[int] = collections.Counter()
    limits = httpx.Limits(max_connections=len(headers), max_keepalive_connections=len(headers))
    stop = asyncio.Event()
    sampler = asyncio.create_task(lock_waits(db_url, stop)) if db_url else None
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        deadline = time.perf_counter() + duration

        async def one(h: dict[str, str]) -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                r = await send(client, h)
                latencies.append(time.perf_counter() - started)
                if r.status_code != expected:
                    errors[r.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(h) for h in headers))
        elapsed = time.perf_counter() - started
    stop.set()
    waits = await sampler if sampler else []
    return len(latencies) / elapsed, latencies, errors, waits


def statuses(counts: collections.Counter[int]) -> str:
    return ", ".join(f"{n} × {status}" for status, n in sorted(counts.items())) or "0"


def buy(raffle_id: str) -> Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]:
    async def send(client: httpx.AsyncClient, h: dict[str, str]) -> httpx.Response:
        return await client.post(
            f"/api/v1/raffles/{raffle_id}/purchases",
            json={"quantity": 1},
            headers={**h, "Idempotency-Key": uuid.uuid4().hex},
        )

    return send


async def me(client: httpx.AsyncClient, h: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/users/me", headers=h)


async def listing(
    base: str, requests: int, concurrency: int, raffle_id: str
) -> dict[str, tuple[float, float, float]]:
    """``GET /raffles`` per sort (first page, and the page after a cursor): rate, p50, p99;
    first the reference, one raffle by id (one row read and shaped)."""
    out = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        ref: list[float] = []

        async def one_raffle(n: int) -> None:
            for _ in range(n):
                started = time.perf_counter()
                r = await client.get(f"/api/v1/raffles/{raffle_id}")
                assert r.status_code == 200, r.text
                ref.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_raffle(requests // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        out[REFERENCE] = (len(ref) / elapsed, percentile(ref, 0.5), percentile(ref, 0.99))
        for label, params in (
            ("closing soonest (default)", {}),
            ("price, ascending", {"sort": "price"}),
            ("newest", {"sort": "-created_at"}),
            ("closing soon filter", {"closing_soon": "true"}),
            ("price range 500-1500", {"price_min": 500, "price_max": 1500}),
        ):
            first = (await client.get("/api/v1/raffles", params={**params, "limit": 50})).json()
            pages = (
                [params, {**params, "cursor": first["next_cursor"]}]
                if first["next_cursor"]
                else [params]
            )
            latencies: list[float] = []

            async def worker(
                n: int, pages: list[dict[str, object]] = pages, latencies: list[float] = latencies
            ) -> None:
                for i in range(n):
                    started = time.perf_counter()
                    r = await client.get(
                        "/api/v1/raffles", params={**pages[i % len(pages)], "limit": 50}
                    )
                    assert r.status_code == 200, r.text
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            out[label] = (
                len(latencies) / elapsed,
                percentile(latencies, 0.5),
                percentile(latencies, 0.99),
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--raffles", type=int, default=10_000)
    parser.add_argument("--list-requests", type=int, default=800)
    parser.add_argument(
        "--sqlite", action="store_true", help="the embedded default instead of PostgreSQL"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the server under pyinstrument (uvicorn, in-process) and write its text"
        " profile here; the figures are then not written to docs/benchmarks.md",
    )
    args = parser.parse_args()
    install_cleanup()
    work = Path(tempfile.mkdtemp(prefix="atrium-bench-raffles-"))
    db_url = (
        f"sqlite+aiosqlite:///{work / 'atrium.db'}"
        if args.sqlite
        # Named per run: two benchmarks at once never drop each other's database.
        else fresh_database(f"atrium_bench_raffles_{os.getpid()}")
    )
    # The fake Stripe runs in a process of its own, so that the load generator's event
    # loop does not slow it down.
    stripe_code = (
        "import time; from tests.apps.raffles.fake_stripe import fake_stripe\n"
        f"with fake_stripe({STRIPE_PORT}):\n    time.sleep(10**6)\n"
    )
    launch(
        [sys.executable, "-c", stripe_code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    stripe_url = f"http://127.0.0.1:{STRIPE_PORT}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
        "ATRIUM_ENVIRONMENT": "development",
        "ATRIUM_APPS": '["raffles"]',
        "ATRIUM_DATABASE__URL": db_url,
        "ATRIUM_DATABASE__POOL_SIZE": "20",
        "ATRIUM_DATA_DIR": str(work / "var"),
        "ATRIUM_LOG_LEVEL": "warning",
        "ATRIUM_RATE_LIMIT__ENABLED": "false",
        "ATRIUM_MAIL__WORKER_IN_API": "false",
        "ATRIUM_ADMIN_EMAIL": ADMIN,
        "ATRIUM_ADMIN_PASSWORD": PASSWORD,
        "ATRIUM_RAFFLES__STRIPE_SECRET_KEY": API_KEY,
        "ATRIUM_RAFFLES__STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ATRIUM_RAFFLES__STRIPE_API_BASE": stripe_url,
    }
    log_path = work / "atrium.log"
    # Migrated before the server starts, so that start-up (slow under the profiler) is short.
    subprocess.run([str(Path(sys.executable).with_name("atrium")), "migrate"], env=env, check=True)
    serve = [str(Path(sys.executable).with_name("atrium")), "serve", "--port", str(PORT)]
    if args.profile:
        # Granian serves from a worker process of its own; uvicorn runs the application
        # in the profiled process.
        serve = [
            *(sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(args.profile)),
            *("-m", "atrium", "serve", "--port", str(PORT), "--server", "uvicorn"),
        ]
    proc = launch(
        serve,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{PORT}"
    wait_ready(base, "/health/ready", proc, log_path, timeout=600)
    admin = asyncio.run(login_all(base, [ADMIN]))[0]
    now = datetime.now(UTC)
    raffle = httpx.post(
        f"{base}/api/v1/admin/raffles",
        headers=admin,
        json={
            "title": "Bench raffle",
            "prize_description": "Nothing",
            "currency": "EUR",
            "ticket_price": 500,
            "total_tickets": 10_000_000,
            "max_per_account": 10_000_000,
            "opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat(),
        },
        timeout=30,
    ).json()
    httpx.post(
        f"{base}/api/v1/admin/raffles/{raffle['id']}/publish", headers=admin, timeout=30
    ).raise_for_status()
    emails = [b["email"] for b in asyncio.run(buyers(base, args.buyers))]
    asyncio.run(verify_emails(db_url))
    headers = asyncio.run(login_all(base, emails))
    # The reference, in the same server and conditions: the same clients reading their
    # account (``GET /users/me``, one indexed read) for the same time.
    cpu = server_cpu_seconds(proc.pid)
    ref_rate, ref_latencies, ref_errors, _ = asyncio.run(
        load(base, headers, args.duration, me, 200)
    )
    ref_cpu = (server_cpu_seconds(proc.pid) - cpu) / max(1, len(ref_latencies))
    cpu = server_cpu_seconds(proc.pid)
    rate, latencies, errors, waits = asyncio.run(
        load(base, headers, args.duration, buy(raffle["id"]), 201, None if args.sqlite else db_url)
    )
    buy_cpu = (server_cpu_seconds(proc.pid) - cpu) / max(1, len(latencies))
    asyncio.run(seed_raffles(db_url, args.raffles))
    lists = asyncio.run(listing(base, args.list_requests, 16, raffle["id"]))
    if args.profile:
        # SIGINT: uvicorn stops, then re-raises it as KeyboardInterrupt, on which the
        # profiler writes its report (after SIGTERM uvicorn would die of the signal).
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)
    stop_all()
    if not args.sqlite:
        psql(f'DROP DATABASE IF EXISTS "atrium_bench_raffles_{os.getpid()}" WITH (FORCE)')
    backend = "SQLite (embedded default)" if args.sqlite else "PostgreSQL"
    machine = platform.processor() or platform.machine()
    lines = [
        SECTION,
        "",
        f"`bench/raffles.py` (`--buyers {args.buyers} --duration {args.duration:g} --raffles {args.raffles}"
        f"{' --sqlite' if args.sqlite else ''}`), {datetime.now(UTC):%Y-%m-%d}, {backend}, one `atrium serve`"
        f" worker, {os.cpu_count()} cores ({machine}) shared with other work; Stripe is the test suite's fake on loopback.",
        "",
        f"**Purchases** (`POST /raffles/{{id}}/purchases`, quantity 1, a new Idempotency-Key each)"
        f" by {args.buyers} concurrent buyers for {args.duration:g} s each, against the"
        " reference measured just before in the same server by the same clients: each reading"
        " its account (`GET /users/me`).",
        "",
        "| load | requests/s | ÷ reference | server CPU per request | ÷ reference | p50 | p99 | not 2xx |",
        "|---|---|---|---|---|---|---|---|",
        f"| `GET /users/me` (reference) | {ref_rate:.0f} | 1 | {ref_cpu * 1000:.1f} ms | 1 |"
        f" {percentile(ref_latencies, 0.5) * 1000:.0f} ms | {percentile(ref_latencies, 0.99) * 1000:.0f} ms | {statuses(ref_errors)} |",
        f"| `POST /raffles/{{id}}/purchases` | {rate:.0f} | {rate / ref_rate:.2f} |"
        f" {buy_cpu * 1000:.1f} ms | {buy_cpu / ref_cpu:.1f} |"
        f" {percentile(latencies, 0.5) * 1000:.0f} ms | {percentile(latencies, 0.99) * 1000:.0f} ms | {statuses(errors)} |",
        "",
        *(
            [
                f"Sessions waiting on a lock during the purchases (`pg_stat_activity`, sampled"
                f" every 50 ms): {statistics.mean(waits):.1f} on average, {max(waits)} at most,"
                f" of {args.buyers} buyers.",
                "",
            ]
            if waits
            else []
        ),
        f"**Public list** (`GET /raffles?limit=50`, first page and the next by cursor, 16 concurrent"
        f" clients) at {args.raffles:,} published raffles, against one raffle by id:",
        "",
        "| list | requests/s | ÷ reference | p50 | p99 |",
        "|---|---|---|---|---|",
        *(
            f"| {k} | {r:.0f} | {r / lists[REFERENCE][0]:.2f} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms |"
            for k, (r, p50, p99) in lists.items()
        ),
        "",
        "A purchase is two short transactions around one call to Stripe. Every purchase of a"
        " raffle updates its row (the counters), so purchases of one raffle queue on that row"
        " lock; the UPDATE is the last statement before the commit, so the lock is held for"
        " one round trip (docs/apps/raffles.md). The list walks one index per sort"
        " (`status, <sort key>, id`), so a page costs the same at any depth.",
    ]
    if not args.profile:
        write_section("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
