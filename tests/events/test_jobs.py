"""The platform's scheduled jobs: purge, retention (sessions, tokens, events); their
last run recorded for ``atrium jobs status`` and ``/metrics``."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from atrium.cli import app
from atrium.config import get_settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.db import unit_of_work
from atrium.core.jobs import Job, JobContext, JobRunner, recorded_runs
from atrium.events.dispatcher import Consumer, EventDispatcher, EventEnvelope
from atrium.events.service import emit
from atrium.models import AuthSession, EmailToken, Event, EventDelivery, User
from atrium.workers import platform_jobs
from tests.factories import insert_user, login, register


def runner(ctx: AppContext, jobs: list[Job] | None = None) -> JobRunner:
    context = JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {})
    return JobRunner(jobs if jobs is not None else platform_jobs(ctx.settings), context)


async def count(ctx: AppContext, model: type) -> int:
    async with ctx.sessionmaker() as db:
        return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


async def test_platform_jobs_purge_clean_up_prune_and_record_their_runs(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    retention = ctx.settings.accounts.deleted_retention_days
    gone = await insert_user(ctx, deleted_at=clock.now() - timedelta(days=retention + 1))
    kept = await insert_user(ctx, deleted_at=clock.now() - timedelta(days=retention - 1))
    await register(client, "ada@example.com")  # a verification token (24 h)
    await login(client, "ada@example.com")  # a live session
    async with unit_of_work(ctx.sessionmaker) as db:
        await emit(db, "user.restored", subject=uuid.uuid4(), at=clock.now())

    async def ok(event: EventEnvelope, db: object) -> None:
        return None

    await EventDispatcher(
        ctx.sessionmaker, ctx.settings, ctx.clock, [Consumer("c", ("*",), ok)]
    ).drain()
    assert await count(ctx, EventDelivery) > 0

    await runner(ctx).run_once(force=True)  # nothing old enough yet but the first account
    async with ctx.sessionmaker() as db:
        assert await db.get(User, gone) is None
        assert await db.get(User, kept) is not None
    assert await count(ctx, AuthSession) == 1
    assert await count(ctx, EmailToken) == 1
    assert await count(ctx, Event) > 0

    # The purge emitted user.deleted: delivered too, it ages with the others.
    await EventDispatcher(
        ctx.sessionmaker, ctx.settings, ctx.clock, [Consumer("c", ("*",), ok)]
    ).drain()
    clock.advance(days=90)  # the session and token end over 30 days ago, the events age
    await runner(ctx).run_once(force=True)

    assert await count(ctx, AuthSession) == 0
    assert await count(ctx, EmailToken) == 0
    # Every delivered event was pruned; left is the user.deleted of the account this pass
    # purged (not yet dispatched).
    async with ctx.sessionmaker() as db:
        left = (await db.execute(select(Event.type, Event.subject_id))).all()
    assert [tuple(r) for r in left] == [("user.deleted", str(kept))]
    assert await count(ctx, EventDelivery) == 0
    async with ctx.sessionmaker() as db:
        runs = {r.name: r for r in await recorded_runs(db)}
    assert set(runs) == {
        "accounts.purge_deleted",
        "retention.run",
        "social.import_avatars",
        "privacy.exports",
        "privacy.erase_due",
        "analytics.rollup",
    }
    assert {(r.outcome, r.runs, r.failures) for r in runs.values()} == {("ok", 2, 0)}
    assert runs["retention.run"].last_run_at == clock.now()


async def test_events_with_an_undelivered_delivery_are_not_pruned(
    ctx: AppContext, clock: FrozenClock
) -> None:
    async with unit_of_work(ctx.sessionmaker) as db:
        await emit(db, "user.restored", subject=uuid.uuid4(), at=clock.now())

    async def down(event: EventEnvelope, db: object) -> None:
        raise ConnectionError("down")

    await EventDispatcher(
        ctx.sessionmaker, ctx.settings, ctx.clock, [Consumer("c", ("*",), down)]
    ).run_once()
    clock.advance(days=90)
    await runner(
        ctx, [j for j in platform_jobs(ctx.settings) if j.name == "retention.run"]
    ).run_once()

    assert await count(ctx, Event) == 1


async def test_a_failing_job_is_recorded_with_its_error_and_shown_in_metrics(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    async def broken(_: JobContext) -> None:
        raise RuntimeError("disk full")

    await runner(ctx, [Job("test.broken", broken)]).run_once()

    async with ctx.sessionmaker() as db:
        [run] = await recorded_runs(db)
    assert (run.outcome, run.failures, run.last_error) == ("error", 1, "RuntimeError: disk full")
    text = (await client.get("/metrics")).text
    assert 'atrium_job_last_run_ok{job="test.broken"} 0.0' in text
    assert 'atrium_job_failures{job="test.broken"} 1.0' in text


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in ("ATRIUM_DATABASE__URL", "ATRIUM_ADMIN_EMAIL", "ATRIUM_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ATRIUM_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_jobs_status_lists_last_run_duration_and_outcome(data_dir: Path) -> None:
    cli = CliRunner()
    assert cli.invoke(app, ["migrate"]).exit_code == 0
    with sqlite3.connect(data_dir / "atrium.db") as conn:
        conn.execute(
            "INSERT INTO job_run VALUES ('sessions.cleanup', '2026-12-02 07:00:00.000000',"
            " 0.25, 'error', 'OperationalError: locked', 3, 1)"
        )

    result = cli.invoke(app, ["jobs", "status"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "job",
        "last",
        "run",
        "(UTC)",
        "seconds",
        "outcome",
        "runs",
        "failed",
    ]
    assert lines[1].split() == [
        "sessions.cleanup",
        "2026-12-02",
        "07:00:00",
        "0.25",
        "error",
        "3",
        "1",
    ]
    assert lines[2].strip() == "last error: OperationalError: locked"
