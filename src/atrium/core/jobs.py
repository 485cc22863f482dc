"""Scheduled jobs of applications: run every ``interval_seconds`` by one leader.

An application declares :class:`Job` values (``AtriumApp.jobs``); ``atrium worker`` runs
them next to the mail delivery, and in the embedded default the API process does
(``mail.worker_in_api``: the API process runs the background work). On PostgreSQL a pass
of a job runs only on the node holding its session-level advisory lock
(``pg_try_advisory_lock``, taken per pass on a connection of its own), so any number of
workers run each job once at a time; SQLite's single writer needs no election. A job
must be idempotent: a pass interrupted half-way is simply run again.

Each job's last run, duration and outcome are kept in :attr:`JobRunner.status`, logged,
and recorded in the ``job_run`` table by the node that ran it (``atrium jobs status``,
``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.core.clock import Clock
from atrium.core.db import database_unavailable, unit_of_work
from atrium.models import JobRun

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a job receives: the settings, the clock, the database and the running
    applications (``core.apps.app_settings(ctx.apps, name, Kind)`` reads an app's group)."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    apps: Mapping[str, Any]


@dataclass(frozen=True)
class Job:
    """``run`` is called every ``interval_seconds`` (a number, or a function of the
    context). ``name`` is unique across applications (``<app>.<job>``)."""

    name: str
    run: Callable[[JobContext], Awaitable[None]]
    interval_seconds: float | Callable[[JobContext], float] = 60.0


@dataclass
class JobStatus:
    last_run_at: datetime | None = None
    duration_seconds: float | None = None
    outcome: str | None = None  # "ok", "error", "skipped" (another node leads)
    next_due: float = 0.0


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key derived from the job's name."""
    return int.from_bytes(
        hashlib.sha256(f"atrium.job:{name}".encode()).digest()[:8], "big", signed=True
    )


@dataclass
class JobRunner:
    jobs: Sequence[Job]
    ctx: JobContext
    tick_seconds: float = 1.0
    status: dict[str, JobStatus] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _interval(self, job: Job) -> float:
        value = job.interval_seconds
        return float(value(self.ctx) if callable(value) else value)

    async def _run_as_leader(self, job: Job) -> bool:
        """Run one pass if this process may lead it; False when another node leads."""
        if self.ctx.engine.dialect.name != "postgresql":
            await job.run(self.ctx)
            return True
        async with self.ctx.engine.connect() as conn:
            key = _lock_key(job.name)
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            await conn.commit()
            if not got:
                return False
            try:
                await job.run(self.ctx)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()
        return True

    async def run_once(self, *, force: bool = False) -> None:
        """One pass of every job that is due (every job with ``force``). A failing job
        is logged and counted; the others still run. After :meth:`stop` no further job of
        the pass starts (a shutdown waits for the running one only)."""
        for job in self.jobs:
            if self._stopping.is_set():
                return
            state = self.status.setdefault(job.name, JobStatus())
            now = time.monotonic()
            if not force and now < state.next_due:
                continue
            state.next_due = now + self._interval(job)
            started = time.perf_counter()
            error: str | None = None
            try:
                led = await self._run_as_leader(job)
                state.outcome = "ok" if led else "skipped"
            except Exception as exc:
                state.outcome = "error"
                error = f"{type(exc).__name__}: {exc}"
                if database_unavailable(exc):  # an outage or a busy SQLite: tried next pass
                    log.warning("job_failed", job=job.name, error=error)
                else:
                    log.exception("job_failed", job=job.name)
            state.last_run_at = self.ctx.clock.now()
            state.duration_seconds = time.perf_counter() - started
            log.debug(
                "job_ran", job=job.name, outcome=state.outcome, seconds=state.duration_seconds
            )
            if state.outcome != "skipped":
                await self._record(job.name, state, error)

    async def _record(self, name: str, state: JobStatus, error: str | None) -> None:
        """Keep the pass in ``job_run`` (what ``atrium jobs status`` and ``/metrics`` read,
        whichever node ran it); a database error here is logged, never raised."""
        try:
            async with unit_of_work(self.ctx.sessionmaker) as db:
                row = await db.get(JobRun, name, with_for_update=True)
                if row is None:
                    row = JobRun(name=name, runs=0, failures=0)
                    db.add(row)
                row.last_run_at = state.last_run_at or self.ctx.clock.now()
                row.duration_seconds = state.duration_seconds or 0.0
                row.outcome = state.outcome or "ok"
                row.runs = (row.runs or 0) + 1
                if error is not None:
                    row.failures = (row.failures or 0) + 1
                    row.last_error = error[:1000]
        except Exception as exc:  # noqa: BLE001 - the status is a report, not the work
            log.warning("job_status_not_recorded", job=name, error=str(exc))

    async def run(self) -> None:
        """Run passes until :meth:`stop`."""
        while not self._stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick_seconds)

    def stop(self) -> None:
        self._stopping.set()


async def recorded_runs(db: AsyncSession) -> list[JobRun]:
    """The last run of every job that ran at least once, by name."""
    return list((await db.execute(select(JobRun).order_by(JobRun.name))).scalars())
