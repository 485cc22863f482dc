"""What the ``atrium mail …`` commands do (each with its own engine); ``atrium worker`` is
:func:`atrium.workers.run_worker`."""

from __future__ import annotations

import structlog

from atrium.config import Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.mail.repository import OutboxRepository

log = structlog.get_logger(__name__)


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
