"""Health endpoints: ``/health/live`` (process up) and ``/health/ready`` (dependencies up)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from atrium import __version__
from atrium.context import AppContext, Ctx
from atrium.core import metrics
from atrium.core.jobs import recorded_runs
from atrium.events.repository import EventRepository
from atrium.health.checks import DependencyStatus, run_checks
from atrium.health.dependencies import MetricsReader
from atrium.mail.repository import OutboxRepository
from atrium.models import OutboxStatus

router = APIRouter(tags=["health"])


class Live(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    """Readiness: ``status`` is ``ok`` only when every required dependency is up."""

    status: str
    version: str
    uptime_seconds: float
    checks: dict[str, DependencyStatus]


@router.get("/health/live", response_model=Live)
async def live() -> Live:
    """The process is up (public; no dependency is checked)."""
    return Live()


async def readiness(ctx: AppContext) -> JSONResponse:
    checks = await run_checks(ctx)
    for name, check in checks.items():
        metrics.HEALTH_CHECK_UP.labels(name).set(1 if check.status == "ok" else 0)
    ok = all(c.status == "ok" for c in checks.values())
    body = Ready(
        status="ok" if ok else "unavailable",
        version=__version__,
        uptime_seconds=round(time.monotonic() - ctx.started_at, 1),
        checks=checks,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


_READY_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {"model": Ready, "description": "A required dependency is down."}
}


@router.get("/health/ready", response_model=Ready, responses=_READY_RESPONSES)
async def ready(ctx: Ctx) -> JSONResponse:
    """Every required dependency answers: database, storage, and Redis and SMTP when
    configured (public)."""
    return await readiness(ctx)


api_router = APIRouter(tags=["health"])


@api_router.get("/health", response_model=Ready, responses=_READY_RESPONSES)
async def api_health(ctx: Ctx) -> JSONResponse:
    """The same as `/health/ready` (public)."""
    return await readiness(ctx)


metrics_router = APIRouter(tags=["health"])


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(_: MetricsReader, ctx: Ctx) -> Response:
    """Prometheus exposition; requires ``Authorization: Bearer <metrics.token>`` when set."""
    # Outbox and event backlogs and failures are database state: read once per scrape.
    async with ctx.sessionmaker() as db:
        outbox = OutboxRepository(db)
        counts = await outbox.counts_by_status()
        oldest_due = await outbox.oldest_pending_due_at()
        events = await EventRepository(db).stats()
        jobs = await recorded_runs(db)
    for state in OutboxStatus:
        metrics.OUTBOX_MESSAGES.labels(state.value).set(counts.get(state.value, 0))
    now = ctx.clock.now()
    late = 0.0 if oldest_due is None else (now - oldest_due).total_seconds()
    metrics.OUTBOX_OLDEST_PENDING_AGE.set(max(0.0, late))
    for consumer, counts in events.deliveries.items():
        for delivery_state, count in counts.items():
            metrics.EVENT_DELIVERY_STATES.labels(consumer, delivery_state).set(count)
    metrics.EVENTS_UNDISPATCHED.set(events.undispatched)
    waiting = [t for t in (events.oldest_undispatched_at, events.oldest_pending_due_at) if t]
    age = (now - min(waiting)).total_seconds() if waiting else 0.0
    metrics.EVENTS_OLDEST_PENDING_AGE.set(max(0.0, age))
    for run in jobs:
        metrics.JOB_LAST_RUN.labels(run.name).set(run.last_run_at.timestamp())
        metrics.JOB_LAST_DURATION.labels(run.name).set(run.duration_seconds)
        metrics.JOB_LAST_OK.labels(run.name).set(1 if run.outcome == "ok" else 0)
        metrics.JOB_FAILURES.labels(run.name).set(run.failures)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
