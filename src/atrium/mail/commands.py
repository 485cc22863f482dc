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
    """Deliver the outbox until SIGINT or SIGTERM. On a signal the batch in progress is
    finished (for at most the SMTP timeout plus 5 s); a row interrupted past that is
    retried by another worker when its lease expires."""
    engine = create_engine(settings)
    try:
        worker = MailWorker(
            create_sessionmaker(engine), settings, SystemClock(), create_transport(settings)
        )
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log.info("mail_worker_stopping", signal=signum.name)
                        worker.stop()
                        # Finish the batch in progress; past the grace period, give up
                        # (its rows are taken over when their lease expires).
                        await anyio.sleep(worker.shutdown_grace_seconds)
                        tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            await worker.run()
            tg.cancel_scope.cancel()
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
