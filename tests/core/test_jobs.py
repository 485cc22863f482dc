"""Scheduled jobs of applications (core/jobs.py): one leader per pass on PostgreSQL, a
failing job does not stop the others, intervals are kept, a stop ends the pass."""

from __future__ import annotations

import asyncio

from atrium.context import AppContext
from atrium.core.jobs import Job, JobContext, JobRunner


def _context(ctx: AppContext) -> JobContext:
    return JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {})


async def test_a_pass_runs_on_one_leader_at_a_time(ctx: AppContext) -> None:
    runs: list[str] = []

    async def slow(_: JobContext) -> None:
        runs.append("ran")
        await asyncio.sleep(0.3)

    job = Job("test.slow", slow)
    first, second = JobRunner([job], _context(ctx)), JobRunner([job], _context(ctx))

    await asyncio.gather(first.run_once(), second.run_once())
    outcomes = sorted(r.status["test.slow"].outcome or "" for r in (first, second))

    if ctx.engine.dialect.name == "postgresql":
        assert runs == ["ran"]
        assert outcomes == ["ok", "skipped"]
    else:  # SQLite: one writer, no election; each process runs its own pass
        assert runs == ["ran", "ran"]


async def test_a_failing_job_is_recorded_and_the_others_still_run(ctx: AppContext) -> None:
    ran: list[str] = []

    async def broken(_: JobContext) -> None:
        raise RuntimeError("boom")

    async def fine(_: JobContext) -> None:
        ran.append("fine")

    runner = JobRunner([Job("test.broken", broken), Job("test.fine", fine)], _context(ctx))

    await runner.run_once()

    assert runner.status["test.broken"].outcome == "error"
    assert runner.status["test.fine"].outcome == "ok"
    assert ran == ["fine"]


async def test_a_job_runs_again_only_after_its_interval(ctx: AppContext) -> None:
    ran: list[int] = []

    async def count(_: JobContext) -> None:
        ran.append(1)

    runner = JobRunner([Job("test.count", count, interval_seconds=3600)], _context(ctx))

    await runner.run_once()
    await runner.run_once()
    await runner.run_once(force=True)

    assert len(ran) == 2


async def test_a_stop_lets_the_running_job_finish_and_starts_no_other(ctx: AppContext) -> None:
    ran: list[str] = []
    runner: JobRunner

    async def first(_: JobContext) -> None:
        runner.stop()  # as a shutdown during the job
        await asyncio.sleep(0)
        ran.append("first")

    async def second(_: JobContext) -> None:
        ran.append("second")

    runner = JobRunner([Job("test.first", first), Job("test.second", second)], _context(ctx))

    await asyncio.wait_for(runner.run(), 10)

    assert ran == ["first"]
    assert runner.status["test.first"].outcome == "ok"
    assert "test.second" not in runner.status
