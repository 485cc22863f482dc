"""Benchmark: webhook deliveries per second to a local receiver, with two workers.
Written into ``docs/benchmarks.md``.

Creates a fresh PostgreSQL database, one endpoint pointing at a receiver on loopback
(uvicorn, answering 204), queues ``--deliveries`` deliveries and times two
:class:`atrium.webhooks.worker.WebhookWorker` passes running concurrently until every
delivery is delivered; checks each ``webhook-id`` arrived exactly once.

    uv run python bench/webhooks.py --server postgresql+asyncpg://postgres@127.0.0.1:5432 \\
        --deliveries 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import doc_section
import httpx
import uvicorn
from sqlalchemy import delete, func, select

from atrium import migrate
from atrium.config import DatabaseSettings, Settings, WebhookSettings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from atrium.social.secret_box import encrypt_secret
from atrium.webhooks.repository import WebhookRepository
from atrium.webhooks.signing import new_secret
from atrium.webhooks.worker import WebhookWorker

SECTION = "## Webhooks: deliveries per second, two workers"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
received: Counter[str] = Counter()


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = dict(scope["headers"])
    received[headers.get(b"webhook-id", b"").decode()] += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def write_section(body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, SECTION, body)


async def create_database(server: str, name: str) -> str:
    import asyncpg

    dsn = server.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(f"{dsn}/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{server}/{name}"


async def ceiling(port: int, n: int, concurrency: int) -> float:
    """Reference in the same process: ``n`` plain POSTs to the receiver over one pooled
    httpx client, ``concurrency`` at a time, no database; requests per second."""
    body = b'{"type":"user.updated"}'
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                await client.post("/hook", content=body, headers={"webhook-id": f"ref-{i}"})

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started)


async def queue(sessionmaker: Any, endpoint_id: uuid.UUID, n: int, now: datetime) -> None:
    async with unit_of_work(sessionmaker) as db:
        payload = {"type": "user.updated", "data": {"fields": ["name"]}}
        await WebhookRepository(db).queue_deliveries(
            [
                {
                    "endpoint_id": endpoint_id,
                    "event_id": uuid.uuid4(),
                    "event_type": "user.updated",
                    "payload": payload,
                    "now": now,
                }
                for _ in range(n)
            ]
        )


async def run(url: str, n: int, data_dir: Path) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    await asyncio.to_thread(migrate.upgrade, url)
    base = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database=DatabaseSettings(url=url),
    )
    engine = create_engine(base, statement_timeouts=False)
    sessionmaker = create_sessionmaker(engine)
    clock = SystemClock()
    now = clock.now()
    endpoint_id = uuid.uuid4()
    async with unit_of_work(sessionmaker) as db:
        db.add(
            WebhookEndpoint(
                id=endpoint_id,
                url=f"http://127.0.0.1:{port}/hook",
                event_types=["*"],
                enabled=True,
                secret=encrypt_secret(base, new_secret()),
                consecutive_failures=0,
                created_at=now,
                updated_at=now,
            )
        )
    default = WebhookSettings().concurrency
    out: dict[str, Any] = {"concurrency": default}
    out["ceiling"] = await ceiling(port, n, 2 * default)
    for label, concurrency in (("one at a time", 1), ("concurrent", default)):
        settings = base.model_copy(
            update={
                "webhooks": WebhookSettings(
                    allow_loopback=True, batch_size=50, concurrency=concurrency
                )
            }
        )
        received.clear()
        await queue(sessionmaker, endpoint_id, n, clock.now())
        workers = [WebhookWorker(sessionmaker, settings, clock) for _ in range(2)]
        started = time.perf_counter()
        await asyncio.gather(*(w.drain(max_passes=100_000) for w in workers))
        elapsed = time.perf_counter() - started
        async with sessionmaker() as db:
            delivered = (
                await db.execute(
                    select(func.count()).where(
                        WebhookDelivery.status == "delivered", WebhookDelivery.created_at >= now
                    )
                )
            ).scalar_one()
            await db.execute(delete(WebhookAttempt))  # the next run counts its own
            await db.execute(delete(WebhookDelivery))
            await db.commit()
        out[label] = (elapsed, int(delivered), sum(1 for c in received.values() if c > 1))
    server.should_exit = True
    await serving
    await engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--database", default="atrium_bench_webhooks")
    args = parser.parse_args()
    url = asyncio.run(create_database(args.server, args.database))
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(run(url, args.deliveries, Path(tmp)))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    ref = out["ceiling"]
    rows = []
    for label in ("one at a time", "concurrent"):
        elapsed, delivered, duplicates = out[label]
        rate = delivered / elapsed
        concurrency = 1 if label == "one at a time" else out["concurrency"]
        rows.append(
            f"| two workers, {concurrency} in flight each | {delivered:,} of "
            f"{args.deliveries:,} | {duplicates} | {elapsed:.1f} s | {rate:,.0f}/s | "
            f"{rate / ref:.2f}× |"
        )
    body = f"""{SECTION}

Run on {when} UTC with `uv run python bench/webhooks.py --deliveries {args.deliveries}`: \
{platform.machine()}, {os.cpu_count()} cores shared with other work (load average at the \
end {load:.2f}); PostgreSQL; one endpoint on a loopback receiver (uvicorn, 204), two \
`WebhookWorker`s in one process, batches of 50. Each attempt is signed (Standard \
Webhooks), its host resolved, checked and pinned, and sent over the worker's pooled client \
(kept-alive connections per host and checked address); the outcomes of the attempts in \
flight are recorded in one transaction. Reference, measured in the same process: plain \
POSTs to the same receiver over one pooled httpx client, {2 * out["concurrency"]} at a \
time, no database: {ref:,.0f} requests/s.

| run | delivered | received twice or more | time | rate | / reference |
|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
"""
    write_section(body)
    print(body)


if __name__ == "__main__":
    main()
