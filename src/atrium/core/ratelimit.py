"""Rate limits with the ``limits`` library: in-process in the embedded default, Redis when
``ATRIUM_REDIS__URL`` is set (so every node counts against the same window).

Moving-window strategy: a limit of "3/hour" allows at most 3 hits in any 60 minutes.
A refused hit raises :class:`RateLimited` (429) with ``Retry-After`` and the
``RateLimit-*`` fields of the IETF httpapi draft (``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from atrium.config import Settings
from atrium.errors import AppError

log = structlog.get_logger(__name__)


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class RateLimiter:
    """Counts hits per (limit, key) and refuses those past the limit."""

    def __init__(
        self, storage: Storage, close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._close = close

    async def hit(self, limit: str | RateLimitItem, *keys: str) -> None:
        """Count one hit of ``keys`` against ``limit`` (e.g. ``"3/hour"``).

        If the storage is unreachable the hit is allowed (logged): a Redis outage must
        not lock every user out.

        Raises:
            RateLimited: 429, past the limit; carries ``Retry-After``.
        """
        item = parse(limit) if isinstance(limit, str) else limit
        try:
            allowed = await self._limiter.hit(item, *keys)
            stats = await self._limiter.get_window_stats(item, *keys)
        except (StorageError, OSError, ConnectionError) as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return
        if not allowed:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                "Too many requests; try again later.",
                headers={
                    "Retry-After": str(retry_after),
                    "RateLimit-Limit": str(item.amount),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(retry_after),
                },
            )

    async def close(self) -> None:
        """Release the storage's connections (Redis)."""
        if self._close is not None:
            await self._close()


def create_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis storage when ``ATRIUM_REDIS__URL`` is set, otherwise in-process memory."""
    if settings.redis.url:
        # Our own pool, so that shutdown can close it (limits offers no close()).
        pool = aioredis.ConnectionPool.from_url(
            settings.redis.url,
            socket_timeout=settings.redis.socket_timeout_seconds,
            socket_connect_timeout=settings.redis.socket_timeout_seconds,
        )
        storage = RedisStorage(
            settings.redis.url,
            implementation="redispy",
            key_prefix=f"{settings.redis.key_prefix}ratelimit",
            wrap_exceptions=True,
            connection_pool=pool,  # type: ignore[arg-type]
        )
        return RateLimiter(storage, close=pool.aclose)
    return RateLimiter(MemoryStorage())
