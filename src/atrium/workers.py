"""Background work of one process: the email outbox, event dispatch to the registered
consumers, and the scheduled jobs (the platform's, :func:`platform_jobs`, and the
applications').

:func:`event_consumers` is the one list of consumers every process builds — the in-process
dispatcher of the embedded default (:mod:`atrium.main`) and ``atrium worker`` alike — so
that every node agrees on who receives which event. A new consumer (a webhook sender, an
analytics rollup) is added here.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.account.avatar_import import import_avatars_job
from atrium.activity.rollups import run_rollup
from atrium.admin.purge import purge_expired
from atrium.config import Settings
from atrium.core.bus import Bus, create_bus
from atrium.core.clock import Clock, SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.core.jobs import Job, JobContext, JobRunner
from atrium.core.leased_worker import LeasedWorker
from atrium.core.storage import create_storage
from atrium.events.dispatcher import Consumer, EventDispatcher
from atrium.mail.transport import create_transport
from atrium.mail.worker import MailWorker
from atrium.notifications.broadcast import broadcast_consumer
from atrium.notifications.consumer import notification_consumer
from atrium.privacy.jobs import erase_due_job, exports_job
from atrium.retention.service import retention_job
from atrium.webhooks.consumer import webhook_consumer
from atrium.webhooks.worker import WebhookWorker

log = structlog.get_logger(__name__)


def event_consumers(
    settings: Settings, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession], bus: Bus
) -> list[Consumer]:
    """Every consumer of domain events in this deployment (the same on every node);
    ``bus`` carries live notices to the streams of every node."""
    return [
        notification_consumer(settings, clock, bus),
        broadcast_consumer(settings, clock, sessionmaker, bus),
        webhook_consumer(clock),
    ]


async def purge_deleted_accounts(ctx: JobContext) -> None:
    """``accounts.purge_deleted``: soft-deleted accounts past their retention, for good."""
    storage = create_storage(ctx.settings)
    try:
        async with unit_of_work(ctx.sessionmaker) as db:
            purged = await purge_expired(
                db,
                now=ctx.clock.now(),
                retention_days=ctx.settings.accounts.deleted_retention_days,
                storage=storage,
                avatar_sizes=ctx.settings.avatars.sizes,
            )
    finally:
        await storage.close()
    if purged:
        log.info("accounts_purged", count=purged)


def platform_jobs(settings: Settings) -> list[Job]:
    """The platform's scheduled jobs (``ATRIUM_JOBS__*``); applications add their own."""
    jobs = settings.jobs
    return [
        Job("accounts.purge_deleted", purge_deleted_accounts, jobs.purge_deleted_interval_seconds),
        Job("retention.run", retention_job, settings.retention.interval_seconds),
        Job(
            "social.import_avatars",
            import_avatars_job,
            settings.social.avatar_import_interval_seconds,
        ),
        Job("analytics.rollup", run_rollup, settings.activity.rollup_interval_seconds),
        Job("privacy.exports", exports_job, settings.privacy.export_build_interval_seconds),
        Job("privacy.erase_due", erase_due_job, settings.privacy.deletion_interval_seconds),
    ]


def build_workers(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, bus: Bus
) -> list[LeasedWorker]:
    """The email worker, the event dispatcher and the webhook sender over ``sessionmaker``."""
    return [
        MailWorker(sessionmaker, settings, clock, create_transport(settings)),
        EventDispatcher(
            sessionmaker, settings, clock, event_consumers(settings, clock, sessionmaker, bus)
        ),
        WebhookWorker(sessionmaker, settings, clock),
    ]


def shutdown_grace_seconds(workers: Sequence[LeasedWorker], settings: Settings) -> float:
    """How long stopping workers may take to finish their row in flight."""
    return max(
        min(settings.mail.lease_seconds, settings.mail.smtp_timeout_seconds + 5),
        settings.events.lease_seconds,
        settings.webhooks.connect_timeout_seconds + settings.webhooks.read_timeout_seconds + 5,
    )


async def run_worker(
    settings: Settings, jobs: Sequence[Job] = (), apps: Mapping[str, Any] | None = None
) -> None:
    """Deliver the outbox, dispatch events and run the scheduled ``jobs`` (``core.jobs``)
    until SIGINT or SIGTERM. On a signal each loop finishes its row in flight (within
    :func:`shutdown_grace_seconds`); a row interrupted past that is retried by another
    worker when its lease expires."""
    engine = create_engine(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        clock = SystemClock()
        bus = create_bus(
            settings.redis.url, settings.redis.key_prefix, settings.redis.socket_timeout_seconds
        )
        workers = build_workers(sessionmaker, settings, clock, bus)
        runner = None
        if jobs:
            runner = JobRunner(jobs, JobContext(settings, clock, engine, sessionmaker, apps or {}))
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log.info("worker_stopping", signal=signum.name)
                        for worker in workers:
                            worker.stop()
                        if runner is not None:
                            runner.stop()
                        await anyio.sleep(shutdown_grace_seconds(workers, settings))
                        tg.cancel_scope.cancel()

            async def run_all() -> None:
                async with anyio.create_task_group() as inner:
                    for worker in workers:
                        inner.start_soon(worker.run)
                    if runner is not None:
                        inner.start_soon(runner.run)
                tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            tg.start_soon(run_all)
    finally:
        await bus.close()
        await engine.dispose()
