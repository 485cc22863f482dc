"""What the ``atrium worker`` and ``atrium mail …`` commands do (each with its own engine)."""

from __future__ import annotations

import signal

import anyio
import structlog

from atrium.config import Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.mail.repository import OutboxRepository
from atrium.mail.transport import create_transport
from atrium.mail.worker import MailWorker

log = structlog.get_logger(__name__)


async def run_worker(settings: Settings) -> None:
    """Deliver the outbox until SIGINT or SIGTERM; the current message is finished first
    only as far as the SMTP call goes — an interrupted row is retried after its lease."""
    engine = create_engine(settings)
    try:
        worker = MailWorker(
            create_sessionmaker(engine), settings, SystemClock(), create_transport(settings)
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("mail_worker_stopping", signal=signum.name)
                    tg.cancel_scope.cancel()
                    break
    finally:
        await engine.dispose()


async def outbox_counts(settings: Settings) -> dict[str, int]:
    """Messages per state: ``{"pending": n, "sending": n, "sent": n, "failed": n}``."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as db:
            return await OutboxRepository(db).counts_by_status()
    finally:
        await engine.dispose()


async def retry_failed(settings: Settings) -> int:
    """Queue every failed message again; how many."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as db:
            return await OutboxRepository(db).retry_failed(SystemClock().now())
    finally:
        await engine.dispose()
