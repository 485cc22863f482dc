"""Rate limits on the `limits` library: moving windows, in-process or in Redis.

A limit is a name from :class:`atrium.config.RateLimitSettings` (``"10/minute;100/hour"``,
the `limits` notation) and a caller key (an IP address, an account). With Redis every node
shares the counters. When the storage cannot be reached, ``rate_limit.fail_open`` decides:
serve (log a warning, count it in ``atrium_rate_limit_backend_errors_total``) or refuse
with 503.

Responses of limited routes carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (seconds; IETF draft "RateLimit header fields for HTTP"), and a 429
carries ``Retry-After`` (RFC 9110 §10.2.3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from atrium.config import Settings
from atrium.core import metrics
from atrium.core.cache import RedisBreaker, redis_driver_info
from atrium.errors import AppError, ServiceUnavailable

log = structlog.get_logger(__name__)


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(
        self, detail: str, retry_after: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after), **(headers or {})})
        self.retry_after = retry_after


class CircuitOpen(Exception):
    """The Redis breaker is open: the storage was not tried."""


@dataclass(frozen=True)
class LimitState:
    """The tightest window of a limit after a hit: the header values."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    """Named moving-window limits over one storage."""

    def __init__(self, settings: Settings, breaker: RedisBreaker | None = None) -> None:
        cfg = settings.rate_limit
        # Shared with the cache: a Redis that stopped answering is skipped by both.
        self._breaker = breaker or RedisBreaker(0)
        self.enabled = cfg.enabled
        self.fail_open = cfg.fail_open
        self._prefix = settings.redis.key_prefix + "rl"
        self.storage: Storage
        self._pool: aioredis.ConnectionPool | None = None
        if settings.redis.url:
            # Our own pool, so that shutdown can close it (limits offers no close()).
            self._pool = aioredis.ConnectionPool.from_url(
                settings.redis.url,
                socket_timeout=settings.redis.socket_timeout_seconds,
                socket_connect_timeout=settings.redis.socket_timeout_seconds,
                driver_info=redis_driver_info(),
            )
            self.storage = RedisStorage(
                "async+" + settings.redis.url,
                implementation="redispy",
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            self.storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._limits: dict[str, list[RateLimitItem]] = {
            name: parse_many(value) for name, value in cfg.limits().items()
        }

    def items(self, name: str) -> list[RateLimitItem]:
        return self._limits[name]

    async def hit(self, name: str, key: str) -> LimitState | None:
        """Count one request of ``key`` against limit ``name``.

        Returns the header values, or None when limiting is off or the storage failed open.

        Raises:
            RateLimited: 429, a window of the limit is full.
            ServiceUnavailable: 503, the storage failed and ``fail_open`` is false.
        """
        if not self.enabled:
            return None
        if not self._redis_allowed(name):
            return None
        try:
            tightest: LimitState | None = None
            for item in self._limits[name]:
                allowed = await self._strategy.hit(item, self._prefix, name, key)
                stats = await self._strategy.get_window_stats(item, self._prefix, name, key)
                reset = max(0, math.ceil(stats.reset_time - time.time()))
                state = LimitState(item.amount, max(0, stats.remaining), reset)
                if not allowed:
                    metrics.RATE_LIMITED.labels(name).inc()
                    raise RateLimited(
                        "Too many requests; try again later.",
                        retry_after=max(1, reset),
                        headers=state.headers(),
                    )
                if tightest is None or state.remaining < tightest.remaining:
                    tightest = state
            self._breaker.succeeded()
            return tightest
        except RateLimited:
            self._breaker.succeeded()
            raise
        except Exception as exc:  # noqa: BLE001 - any storage failure takes the configured path
            self._storage_failed(name, exc)
            return None

    async def count(self, name: str, key: str) -> int:
        """How many hits ``key`` has in the first window of ``name`` (0 when unknown)."""
        if not self.enabled:
            return 0
        item = self._limits[name][0]
        if not self._redis_allowed(name):
            return 0
        try:
            stats = await self._strategy.get_window_stats(item, self._prefix, name, key)
        except Exception as exc:  # noqa: BLE001
            self._storage_failed(name, exc)
            return 0
        self._breaker.succeeded()
        return item.amount - stats.remaining

    async def record(self, name: str, key: str) -> None:
        """Count a hit without refusing (e.g. a failed login)."""
        if not self.enabled or not self._redis_allowed(name):
            return
        try:
            for item in self._limits[name]:
                await self._strategy.hit(item, self._prefix, name, key)
        except Exception as exc:  # noqa: BLE001
            self._storage_failed(name, exc)
            return
        self._breaker.succeeded()

    async def reset(self, name: str, key: str) -> None:
        if not self.enabled or not self._redis_allowed(name):
            return
        try:
            for item in self._limits[name]:
                await self._strategy.clear(item, self._prefix, name, key)
        except Exception as exc:  # noqa: BLE001
            self._storage_failed(name, exc)
            return
        self._breaker.succeeded()

    def _redis_allowed(self, name: str) -> bool:
        """False (after taking the configured failure path) while the Redis breaker is
        open: the storage is skipped, not waited for."""
        if self._pool is None or self._breaker.allow():
            return True
        self._storage_failed(name, CircuitOpen("Redis skipped after a recent failure"))
        return False

    def _storage_failed(self, name: str, exc: Exception) -> None:
        if self._pool is not None and not isinstance(exc, CircuitOpen):
            self._breaker.failed()
        decision = "served" if self.fail_open else "refused"
        metrics.RATE_LIMIT_BACKEND_ERRORS.labels(decision).inc()
        log.warning(
            "rate_limit_storage_unavailable",
            limit=name,
            decision=decision,
            error=type(exc).__name__,
        )
        if not self.fail_open:
            raise ServiceUnavailable("Rate limiting is unavailable; try again shortly.") from exc

    async def close(self) -> None:
        """Release the Redis connections, if any."""
        if self._pool is not None:
            await self._pool.aclose()


def rate_limit(name: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency counting each request against limit ``name`` per client IP.

    The header values are left in ``request.state.ratelimit`` for the edge middleware.
    """

    async def dependency(request: Request) -> None:
        limiter: RateLimiter = request.app.state.ctx.ratelimiter
        ip = request.client.host if request.client else "unknown"
        state = await limiter.hit(name, ip)
        if state is not None:
            request.state.ratelimit = state

    return dependency
