"""Health endpoints: ``/health/live`` (process up) and ``/health/ready`` (dependencies up)."""

from __future__ import annotations

import hmac
import time

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from atrium import __version__
from atrium.context import AppContext, Ctx
from atrium.core import metrics
from atrium.errors import NotAuthenticated
from atrium.mail.repository import OutboxRepository
from atrium.mail.transport import SmtpTransport
from atrium.models import OutboxStatus

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_SECONDS = 2.0


class Live(BaseModel):
    status: str = "ok"


class DependencyStatus(BaseModel):
    status: str
    latency_ms: float
    error: str | None = None


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


async def _timed(check_name: str, ctx: AppContext) -> DependencyStatus:
    start = time.perf_counter()
    try:
        with anyio.fail_after(_CHECK_TIMEOUT_SECONDS):
            if check_name == "database":
                async with ctx.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            elif check_name == "smtp":
                await SmtpTransport(ctx.settings).probe(_CHECK_TIMEOUT_SECONDS)
            elif check_name == "storage":
                await ctx.storage.ping()
            else:
                await ctx.cache.ping()
    except Exception as exc:  # noqa: BLE001 - any failure is reported as 'down', never raised
        return DependencyStatus(
            status="down",
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            error=type(exc).__name__,
        )
    return DependencyStatus(status="ok", latency_ms=round((time.perf_counter() - start) * 1000, 2))


async def readiness(ctx: AppContext) -> JSONResponse:
    checks = {"database": await _timed("database", ctx)}
    if ctx.settings.redis.url:
        checks["redis"] = await _timed("redis", ctx)
    if ctx.settings.mail.smtp_host:
        # Required: with SMTP configured, mail that cannot be sent piles up in the outbox.
        checks["smtp"] = await _timed("smtp", ctx)
    checks["storage"] = await _timed("storage", ctx)
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
async def prometheus_metrics(request: Request, ctx: Ctx) -> Response:
    """Prometheus exposition; requires ``Authorization: Bearer <metrics.token>`` when set."""
    token = ctx.settings.metrics.token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}"
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotAuthenticated("The metrics token is required.")
    # Outbox backlog and failures are database state: count them once per scrape.
    async with ctx.sessionmaker() as db:
        counts = await OutboxRepository(db).counts_by_status()
    for state in OutboxStatus:
        metrics.OUTBOX_MESSAGES.labels(state.value).set(counts.get(state.value, 0))
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
