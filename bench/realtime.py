"""Benchmark: live notices. Written into ``docs/benchmarks.md``.

1. **Idle SSE connections**: one ``atrium serve`` node holds ``--connections`` open
   ``/api/v1/users/me/notifications/stream`` connections (target 10,000); the server's
   resident memory (VmRSS of its process tree) before and after gives the memory per
   connection.
2. **Node A to node B**: two ``atrium serve`` nodes sharing PostgreSQL and Redis;
   ``--accounts`` accounts each hold a stream on B while an administrator on A grants and
   revokes their role, open loop at ``--rate`` changes per second with at most
   ``--concurrency`` in flight (each change makes a notice, through A's in-process event
   dispatcher and Redis pub/sub); the time from the change's HTTP answer on A to the
   notice on B's stream, p50/p99, and the rate the machine achieved.

    uv run python bench/realtime.py --server postgresql+asyncpg://postgres@127.0.0.1:5432 \\
        --redis redis://127.0.0.1:6379/3 --connections 10000 --changes 1000 --rate 20,1000

(a fresh database ``atrium_bench_realtime`` is made on ``--server``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import doc_section
import httpx

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Live notices: idle SSE connections and node-to-node latency"
PASSWORD = "bench realtime passphrase"  # nosec B105
STREAM = "/api/v1/users/me/notifications/stream"


def write_section(title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, title, body)


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (KiB)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        pids.extend(int(c) for c in children)
    return total


def start(port: int, env: dict[str, str], workdir: str) -> subprocess.Popen[bytes]:
    atrium = str(Path(sys.executable).with_name("atrium"))
    proc = subprocess.Popen(
        [atrium, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"atrium serve on {port} did not start")


def account(base: str, email: str) -> tuple[str, str]:
    """Register and log in ``email``: (user id, access token)."""
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as c:
        r = c.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code in (201, 409), r.text
        r = c.post("/auth/login", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = c.get("/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    return me["id"], token


async def open_stream(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw SSE connection (lighter than an HTTP client object per connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return reader, writer


async def idle_connections(port: int, pid: int, token: str, count: int) -> tuple[int, int, int]:
    """(RSS before, RSS after in KiB, connections held)."""
    await asyncio.sleep(2)
    before = rss_kib(pid)
    streams = []
    for i in range(0, count, 200):
        batch = await asyncio.gather(
            *(open_stream(port, token) for _ in range(min(200, count - i))),
            return_exceptions=True,
        )
        streams += [s for s in batch if not isinstance(s, BaseException)]
    await asyncio.sleep(3)
    after = rss_kib(pid)
    for _, writer in streams:
        writer.close()
    return before, after, len(streams)


async def latency(
    port_a: int,
    port_b: int,
    admin: str,
    users: list[tuple[str, str]],
    changes: int,
    rate: float,
    concurrency: int,
) -> tuple[list[float], float]:
    """Seconds from each change's answer on A to its notice on B's stream; achieved rate.

    Open loop: change ``i`` is started at ``i / rate`` seconds whatever the answers to the
    earlier ones (at most ``concurrency`` in flight); it grants (or, every other round,
    revokes) a role of account ``i mod len(users)``, each account with its own stream on
    B. One account's changes are serialised (its notices arrive in order)."""
    streams = [await open_stream(port_b, token) for _, token in users]
    answered: list[list[float]] = [[] for _ in users]
    arrived: list[list[float]] = [[] for _ in users]
    expected = [len(range(k, changes, len(users))) for k in range(len(users))]

    async def read(k: int) -> None:
        reader = streams[k][0]
        while len(arrived[k]) < expected[k]:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event: notification"):
                arrived[k].append(time.perf_counter())

    readers = [asyncio.create_task(read(k)) for k in range(len(users))]
    locks = [asyncio.Lock() for _ in users]
    slots = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {admin}"}, limits=limits, timeout=60
    ) as c:

        async def change(i: int) -> None:
            k = i % len(users)
            url = f"http://127.0.0.1:{port_a}/api/v1/admin/users/{users[k][0]}/roles/moderator"
            async with slots, locks[k]:
                grant = (i // len(users)) % 2 == 0
                response = await (c.put(url) if grant else c.delete(url))
                assert response.status_code == 200, response.text
                answered[k].append(time.perf_counter())

        tasks = []
        for i in range(changes):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(change(i)))
        await asyncio.gather(*tasks)
    achieved = changes / (time.perf_counter() - started)
    await asyncio.wait_for(asyncio.gather(*readers), 120)
    for _, writer in streams:
        writer.close()
    return [
        arrival - answer
        for k in range(len(users))
        for answer, arrival in zip(answered[k], arrived[k], strict=True)
    ], achieved


async def fresh_database(server: str, name: str) -> str:
    """An empty database ``name`` on ``server`` (dropped first if it exists); its URL."""
    import asyncpg

    conn = await asyncpg.connect(
        server.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    )
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{server}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3", help="shared by A and B")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument(
        "--rate",
        default="1000",
        help="changes per second asked; several, comma-separated, are measured in turn",
    )
    parser.add_argument("--port", type=int, default=8871)
    parser.add_argument("--accounts", type=int, default=100, help="streams on B for latency")
    parser.add_argument("--concurrency", type=int, default=32, help="changes in flight on A")
    args = parser.parse_args()
    database = asyncio.run(fresh_database(args.server, "atrium_bench_realtime"))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
            "ATRIUM_DATA_DIR": str(Path(tmp) / "var"),
            "ATRIUM_DATABASE__URL": database,
            "ATRIUM_REDIS__URL": args.redis,
            "ATRIUM_REDIS__KEY_PREFIX": f"atrium-bench-rt-{os.getpid()}:",
            "ATRIUM_HTTP__ACCESS_LOG": "false",
            "ATRIUM_LOG_LEVEL": "warning",
            "ATRIUM_RATE_LIMIT__REGISTRATION": "10000/minute",
            "ATRIUM_RATE_LIMIT__LOGIN": "10000/minute",
            "ATRIUM_ADMIN_EMAIL": f"bench-rt-admin-{os.getpid()}@example.com",
            "ATRIUM_ADMIN_PASSWORD": PASSWORD,
        }
        a = start(args.port, env, tmp)
        b = start(args.port + 1, env | {"ATRIUM_EVENTS__WORKER_IN_API": "false"}, tmp)
        try:
            base_a = f"http://127.0.0.1:{args.port}"
            _, admin = account(base_a, env["ATRIUM_ADMIN_EMAIL"])
            users = [
                account(base_a, f"bench-rt-{os.getpid()}-{k}@example.com")
                for k in range(args.accounts)
            ]
            before, after, held = asyncio.run(
                idle_connections(args.port + 1, b.pid, users[0][1], args.connections)
            )
            rates = [float(r) for r in args.rate.split(",")]
            # Each account's role is granted and revoked alike often: every run ends where
            # it began, so the next one's first change is a grant again.
            assert args.changes % (2 * args.accounts) == 0, "--changes: a multiple of 2 × accounts"
            runs = [
                (
                    rate,
                    *asyncio.run(
                        latency(
                            args.port,
                            args.port + 1,
                            admin,
                            users,
                            args.changes,
                            rate,
                            args.concurrency,
                        )
                    ),
                )
                for rate in rates
            ]
        finally:
            for proc in (a, b):
                proc.terminate()
                proc.wait(timeout=30)
    per_conn = (after - before) / max(1, held)
    lines = [
        SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/realtime.py "
        f"--connections {args.connections} --changes {args.changes} --rate {args.rate} "
        f"--accounts {args.accounts} --concurrency {args.concurrency}`: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with "
        f"other work (load average at the end {os.getloadavg()[0]:.2f}); two `atrium serve` "
        "nodes (one worker each) on PostgreSQL and Redis; node A dispatches the events.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| idle SSE connections held by node B | {held:,} |",
        f"| node B resident memory before / after | {before / 1024:,.0f} MiB / {after / 1024:,.0f} MiB |",
        f"| resident memory per idle connection | {per_conn:,.1f} KiB |",
        "",
        f"Changes on A (a role granted or revoked: one event, one notice) open loop over "
        f"{args.accounts} accounts with {args.concurrency} in flight, {args.changes:,} per "
        "row; the time from the change's answer on A to the notice on B's stream:",
        "",
        "| asked | achieved | p50 | p99 |",
        "|---:|---:|---:|---:|",
    ]
    for rate, seconds, achieved in runs:
        ms = sorted(x * 1000 for x in seconds)
        p50 = statistics.median(ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        lines.append(f"| {rate:g}/s | {achieved:,.0f}/s | {p50:,.1f} ms | {p99:,.1f} ms |")
    lines += [
        "",
        "Where fewer changes are achieved than asked, node A (API, event dispatcher and "
        "PostgreSQL on the same 2 cores) is saturated: events wait in the outbox and the "
        "latency is the age of that backlog, not the cost of one notice.",
    ]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
