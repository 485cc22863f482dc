"""What the ``atrium events …`` and ``atrium jobs status`` commands do (each with its own
engine)."""

from __future__ import annotations

from atrium.config import Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.core.jobs import recorded_runs
from atrium.events.repository import EventRepository, EventStats
from atrium.models import EventDelivery, JobRun


async def event_stats(settings: Settings) -> EventStats:
    """The dispatch backlog and the deliveries per consumer and state."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as db:
            return await EventRepository(db).stats()
    finally:
        await engine.dispose()


def format_stats(stats: EventStats, now_seconds: float) -> list[str]:
    """The lines ``atrium events status`` prints (``now_seconds``: the current POSIX time)."""

    def age(at: object) -> str:
        if at is None:
            return "-"
        return f"{max(0.0, now_seconds - at.timestamp()):.0f} s"  # type: ignore[attr-defined]

    lines = [
        f"undispatched events  {stats.undispatched} (oldest {age(stats.oldest_undispatched_at)})",
        f"oldest pending delivery due {age(stats.oldest_pending_due_at)} ago",
        f"{'consumer':<24} {'pending':>8} {'delivering':>10} {'delivered':>10} {'failed':>7}",
    ]
    for consumer, counts in sorted(stats.deliveries.items()):
        lines.append(
            f"{consumer:<24} {counts['pending']:>8} {counts['delivering']:>10}"
            f" {counts['delivered']:>10} {counts['failed']:>7}"
        )
    return lines


async def retry_failed(settings: Settings, consumer: str | None = None) -> int:
    """Queue every failed delivery (of ``consumer``, else of all) again; how many."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as db:
            where = EventDelivery.consumer == consumer if consumer else None
            return await EventRepository(db).retry_failed(SystemClock().now(), where)
    finally:
        await engine.dispose()


async def job_runs(settings: Settings) -> list[JobRun]:
    """The last run of every scheduled job that ran at least once (``job_run``)."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as db:
            return await recorded_runs(db)
    finally:
        await engine.dispose()


def format_job_runs(runs: list[JobRun]) -> list[str]:
    """The lines of ``atrium jobs status``."""
    header = f"{'job':<28} {'last run (UTC)':<20} {'seconds':>8} {'outcome':<8}"
    lines = [f"{header} {'runs':>6} {'failed':>6}"]
    for run in runs:
        at = run.last_run_at.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{run.name:<28} {at:<20} {run.duration_seconds:>8.2f} {run.outcome:<8}"
            f" {run.runs:>6} {run.failures:>6}"
        )
        if run.outcome == "error" and run.last_error:
            lines.append(f"  last error: {run.last_error}")
    return lines
