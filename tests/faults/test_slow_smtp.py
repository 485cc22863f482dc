"""A slow SMTP server and two delivery workers: a batch that takes longer than one lease is
still sent exactly once, because the lease is renewed before each message."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from atrium.core.clock import SystemClock
from atrium.core.db import unit_of_work
from atrium.mail.repository import OutboxRepository
from atrium.mail.transport import SmtpTransport
from atrium.mail.worker import MailWorker
from atrium.models import OutboxMessage, OutboxStatus
from tests.factories import PASSWORD
from tests.faults.conftest import Node, StartNode, fault_settings, free_port

MESSAGES = 20


@dataclass
class SlowSink:
    """An aiosmtpd handler that takes ``delay`` seconds to accept each message."""

    delay: float
    message_ids: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started.set()
        await asyncio.sleep(self.delay)
        content = envelope.content.decode(errors="replace")
        message_id = next(
            line.split(":", 1)[1].strip()
            for line in content.splitlines()
            if line.lower().startswith("message-id:")
        )
        with self.lock:
            self.message_ids.append(message_id)
        return "250 Message accepted for delivery"


@pytest.fixture
def slow_smtp() -> Iterator[tuple[SlowSink, int]]:
    # Each message takes 0.3 s against a lease of 3 s: one batch of 20 needs two leases.
    sink = SlowSink(delay=0.3)
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def test_two_workers_and_a_slow_smtp_server_send_each_message_once(
    pg_url: str, tmp_path: Path, start_node: StartNode, slow_smtp: tuple[SlowSink, int]
) -> None:
    sink, port = slow_smtp
    settings = fault_settings(
        tmp_path,
        pg_url,
        mail={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "smtp_timeout_seconds": 2.5,
            "lease_seconds": 3.0,
            "batch_size": 20,
            "poll_interval_seconds": 0.05,
        },
    )
    node: Node = await start_node(settings)
    for i in range(MESSAGES):  # each registration queues one verification email
        r = await node.client.post(
            "/api/v1/auth/register", json={"email": f"u{i}@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201

    workers = [
        MailWorker(node.ctx.sessionmaker, settings, SystemClock(), SmtpTransport(settings))
        for _ in range(2)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        for _ in range(600):
            async with node.ctx.sessionmaker() as db:
                counts = await OutboxRepository(db).counts_by_status()
            if counts[OutboxStatus.sent.value] == MESSAGES:
                break
            await asyncio.sleep(0.1)
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)

    assert counts[OutboxStatus.sent.value] == MESSAGES
    duplicates = {mid: n for mid, n in Counter(sink.message_ids).items() if n > 1}
    assert duplicates == {}
    assert len(sink.message_ids) == MESSAGES


async def test_a_stopping_worker_gives_back_the_rest_of_its_batch(
    pg_url: str, tmp_path: Path, start_node: StartNode, slow_smtp: tuple[SlowSink, int]
) -> None:
    sink, port = slow_smtp
    settings = fault_settings(
        tmp_path,
        pg_url,
        mail={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "smtp_timeout_seconds": 5,
            "lease_seconds": 300,
        },
    )
    node: Node = await start_node(settings)
    for i in range(4):
        r = await node.client.post(
            "/api/v1/auth/register", json={"email": f"s{i}@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
    worker = MailWorker(node.ctx.sessionmaker, settings, SystemClock(), SmtpTransport(settings))
    task = asyncio.create_task(worker.run_once())
    assert await asyncio.to_thread(sink.started.wait, 30)  # the first message is being sent
    worker.stop()
    await asyncio.wait_for(task, timeout=30)

    async with unit_of_work(node.ctx.sessionmaker) as db:
        rows = list((await db.execute(select(OutboxMessage))).scalars())
    states = Counter(row.status for row in rows)
    assert states == {OutboxStatus.sent.value: 1, OutboxStatus.pending.value: 3}
    assert all(row.lease_id is None for row in rows)
    assert {row.attempts for row in rows if row.status == OutboxStatus.pending.value} == {0}
