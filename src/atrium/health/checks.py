"""Readiness checks: a registry of named checks, run concurrently, each within its own
timeout.

A check is an ``async`` callable taking the :class:`AppContext`; it passes by returning and
fails by raising anything (the error's type name is reported, never the message, which may
hold a host name or a credential). ``when`` decides from the settings whether the check
applies (Redis only when configured, ...). Applications register their own checks at
start-up with :func:`register_check`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from pydantic import BaseModel
from sqlalchemy import text

from atrium.config import Settings
from atrium.context import AppContext
from atrium.mail.transport import SmtpTransport

CHECK_TIMEOUT_SECONDS = 2.0


class DependencyStatus(BaseModel):
    status: str
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True)
class HealthCheck:
    name: str
    run: Callable[[AppContext], Awaitable[None]]
    when: Callable[[Settings], bool] = lambda _settings: True


async def _database(ctx: AppContext) -> None:
    async with ctx.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(ctx: AppContext) -> None:
    await ctx.cache.ping()


async def _smtp(ctx: AppContext) -> None:
    await SmtpTransport(ctx.settings).probe(CHECK_TIMEOUT_SECONDS)


async def _storage(ctx: AppContext) -> None:
    await ctx.storage.ping()


# In reporting order. SMTP is required when configured: mail that cannot be sent piles up
# in the outbox.
CHECKS: list[HealthCheck] = [
    HealthCheck("database", _database),
    HealthCheck("redis", _redis, lambda s: bool(s.redis.url)),
    HealthCheck("smtp", _smtp, lambda s: bool(s.mail.smtp_host)),
    HealthCheck("storage", _storage),
]


def register_check(check: HealthCheck) -> None:
    """Add ``check`` to the readiness checks (names are unique).

    Raises:
        ValueError: a check of this name is already registered.
    """
    if any(c.name == check.name for c in CHECKS):
        raise ValueError(f"a health check named {check.name!r} is already registered")
    CHECKS.append(check)


async def _timed(check: HealthCheck, ctx: AppContext, limit: float) -> DependencyStatus:
    start = time.perf_counter()
    try:
        with anyio.fail_after(limit):
            await check.run(ctx)
    except Exception as exc:  # noqa: BLE001 - any failure is reported as 'down', never raised
        return DependencyStatus(
            status="down",
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            error=type(exc).__name__,
        )
    return DependencyStatus(status="ok", latency_ms=round((time.perf_counter() - start) * 1000, 2))


async def run_checks(
    ctx: AppContext, limit: float = CHECK_TIMEOUT_SECONDS
) -> dict[str, DependencyStatus]:
    """Every applicable check's status, by name in registry order. The checks run
    concurrently, each cut off after ``limit`` seconds (reported ``down``,
    ``TimeoutError``), so the answer takes at most about ``limit`` seconds."""
    applicable = [c for c in CHECKS if c.when(ctx.settings)]
    results: dict[str, DependencyStatus] = {}

    async def one(check: HealthCheck) -> None:
        results[check.name] = await _timed(check, ctx, limit)

    async with anyio.create_task_group() as group:
        for check in applicable:
            group.start_soon(one, check)
    return {c.name: results[c.name] for c in applicable}
