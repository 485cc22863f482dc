"""A small key/value cache with per-entry lifetimes: in-process or Redis.

The in-process cache (embedded default) is a ``cachetools.TLRUCache``; the Redis cache is
shared by every node, so a write on one node is seen by all of them at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import redis
import redis.asyncio as aioredis
import structlog
from aiodataloader import DataLoader
from cachetools import TLRUCache
from redis.driver_info import DriverInfo

from atrium.config import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")


def redis_driver_info() -> DriverInfo:
    """What each of Atrium's Redis connections reports with ``CLIENT SETINFO``: redis-py and
    its version (``lib-name``, ``lib-ver`` of ``CLIENT INFO``), as redis-py reports them by
    default.

    Given to every pool Atrium opens (the cache, the rate limiter, the bus): without it
    redis-py looks its own version up in the installed packages' metadata
    (``importlib.metadata``, a search of ``sys.path``) for every new connection.
    """
    return DriverInfo(name="redis-py", lib_version=redis.__version__)


class CacheError(Exception):
    """The cache backend could not be reached or answered with an error."""


class RedisBreaker:
    """A circuit breaker for one node's Redis calls (the cache and the rate limiter).

    Closed, every call goes to Redis. A call that fails at the connection level (refused,
    reset, or no answer within ``redis.socket_timeout_seconds``) opens it: for
    ``cooldown_seconds`` every call is skipped at once, as if Redis had refused, and its
    caller takes its fallback (the database; fail-open rate limits). Then one call is let
    through as a probe: its success closes the breaker, its failure opens it again. So when
    Redis hangs, a request waits for at most one socket time-out (the call in flight when
    Redis stopped answering, or the probe) instead of one per Redis call, and the node
    sends Redis at most one probe per cooldown.

    ``clock`` is ``time.monotonic`` unless a test moves time itself.
    """

    def __init__(self, cooldown_seconds: float, clock: Callable[[], float] | None = None) -> None:
        self.cooldown_seconds = cooldown_seconds
        self.clock: Callable[[], float] = clock or time.monotonic
        self._opened_at: float | None = None
        self._probe_at: float | None = None
        self.skipped = 0

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """True when a call may go to Redis now (closed, or the one probe after a cooldown)."""
        if self._opened_at is None or self.cooldown_seconds <= 0:
            return True
        now = self.clock()
        waited = self._probe_at if self._probe_at is not None else self._opened_at
        if now - waited >= self.cooldown_seconds:
            self._probe_at = now  # one probe per cooldown
            return True
        self.skipped += 1
        return False

    def succeeded(self) -> None:
        if self._opened_at is not None:
            log.info("redis_circuit_closed")
        self._opened_at = self._probe_at = None

    def failed(self) -> None:
        if self._opened_at is None:
            log.warning("redis_circuit_opened", cooldown_seconds=self.cooldown_seconds)
        self._opened_at = self.clock()
        self._probe_at = None


# Compare-and-delete of every key holding ARGV[1], in one atomic step.
_DELETE_IF = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""

_CONNECTION_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)


class Cache(Protocol):
    """Keys are strings, values bytes, lifetimes seconds."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def set_many(self, items: Mapping[str, bytes], ttl: float) -> None:
        """Set every key of ``items`` with the same lifetime (one round-trip on Redis)."""
        ...

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set ``key`` only if it is absent; True when it was set."""
        ...

    async def delete(self, *keys: str) -> None: ...

    async def delete_if(self, keys: Sequence[str], value: bytes) -> None:
        """Delete each of ``keys`` whose value is ``value`` (atomically per key on Redis)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """In-process cache; entries expire individually (monotonic clock)."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self._data: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=maxsize, ttu=lambda _k, v, _now: v[1], timer=time.monotonic
        )

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for key in keys:
            entry = self._data.get(key)
            out.append(entry[0] if entry is not None else None)
        return out

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._data[key] = (value, time.monotonic() + ttl)

    async def set_many(self, items: Mapping[str, bytes], ttl: float) -> None:
        expires = time.monotonic() + ttl
        for key, value in items.items():
            self._data[key] = (value, expires)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._data.get(key) is not None:
            return False
        self._data[key] = (value, time.monotonic() + ttl)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def delete_if(self, keys: Sequence[str], value: bytes) -> None:
        for key in keys:
            entry = self._data.get(key)
            if entry is not None and entry[0] == value:
                self._data.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis-backed cache shared by every node; errors surface as :class:`CacheError`.

    Reads are coalesced: every ``get_many`` issued in the same event-loop tick is sent as
    one ``MGET`` (a DataLoader, aiodataloader), so a burst of authenticated requests costs
    one Redis round-trip instead of one each. Every call goes through ``breaker``
    (:class:`RedisBreaker`): while it is open, calls fail at once with :class:`CacheError`.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        socket_timeout: float,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._redis = aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            driver_info=redis_driver_info(),
        )
        self._prefix = prefix
        self.breaker = breaker or RedisBreaker(0)
        self._loader: DataLoader[str, bytes | None] = DataLoader(
            self._mget, cache=False, max_batch_size=512
        )

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise CacheError("Redis skipped after a recent failure (circuit open)")
        try:
            result = await operation()
        except _CONNECTION_ERRORS as exc:
            self.breaker.failed()
            raise CacheError(str(exc)) from exc
        except aioredis.RedisError as exc:
            self.breaker.succeeded()  # Redis answered, with an error
            raise CacheError(str(exc)) from exc
        self.breaker.succeeded()
        return result

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        values = await self._call(lambda: self._redis.mget([self._k(k) for k in keys]))
        return [v if isinstance(v, bytes) or v is None else str(v).encode() for v in values]

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._loader.load_many(keys)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        px = max(1, int(ttl * 1000))
        await self._call(lambda: self._redis.set(self._k(key), value, px=px))

    async def set_many(self, items: Mapping[str, bytes], ttl: float) -> None:
        if not items:
            return
        px = max(1, int(ttl * 1000))

        async def run() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self._k(key), value, px=px)
                await pipe.execute()

        await self._call(run)

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        px = max(1, int(ttl * 1000))
        result = await self._call(lambda: self._redis.set(self._k(key), value, px=px, nx=True))
        return bool(result)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        await self._call(lambda: self._redis.delete(*(self._k(k) for k in keys)))

    async def delete_if(self, keys: Sequence[str], value: bytes) -> None:
        if not keys:
            return
        await self._call(
            lambda: self._redis.eval(_DELETE_IF, len(keys), *(self._k(k) for k in keys), value)
        )

    async def ping(self) -> None:
        await self._call(self._redis.ping)

    async def close(self) -> None:
        await self._redis.aclose()


def create_cache(settings: Settings, breaker: RedisBreaker | None = None) -> Cache:
    """Redis when ``ATRIUM_REDIS__URL`` is set, otherwise in-process."""
    if settings.redis.url:
        return RedisCache(
            settings.redis.url,
            prefix=settings.redis.key_prefix,
            socket_timeout=settings.redis.socket_timeout_seconds,
            breaker=breaker,
        )
    return MemoryCache()
