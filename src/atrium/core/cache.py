"""A small key/value cache with per-entry lifetimes: in-process or Redis.

The in-process cache (embedded default) is a ``cachetools.TLRUCache``; the Redis cache is
shared by every node, so a write on one node is seen by all of them at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from aiodataloader import DataLoader
from cachetools import TLRUCache

from atrium.config import Settings


class CacheError(Exception):
    """The cache backend could not be reached or answered with an error."""


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

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis-backed cache shared by every node; errors surface as :class:`CacheError`.

    Reads are coalesced: every ``get_many`` issued in the same event-loop tick is sent as
    one ``MGET`` (a DataLoader, aiodataloader), so a burst of authenticated requests costs
    one Redis round-trip instead of one each.
    """

    def __init__(self, url: str, *, prefix: str, socket_timeout: float) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._prefix = prefix
        self._loader: DataLoader[str, bytes | None] = DataLoader(
            self._mget, cache=False, max_batch_size=512
        )

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        try:
            values = await self._redis.mget([self._k(k) for k in keys])
        except aioredis.RedisError as exc:
            raise CacheError(str(exc)) from exc
        return [v if isinstance(v, bytes) or v is None else str(v).encode() for v in values]

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._loader.load_many(keys)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self._redis.set(self._k(key), value, px=max(1, int(ttl * 1000)))
        except aioredis.RedisError as exc:
            raise CacheError(str(exc)) from exc

    async def set_many(self, items: Mapping[str, bytes], ttl: float) -> None:
        if not items:
            return
        px = max(1, int(ttl * 1000))
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self._k(key), value, px=px)
                await pipe.execute()
        except aioredis.RedisError as exc:
            raise CacheError(str(exc)) from exc

    async def add(self, key: str, value: bytes, ttl: float) -> bool:
        try:
            result = await self._redis.set(self._k(key), value, px=max(1, int(ttl * 1000)), nx=True)
        except aioredis.RedisError as exc:
            raise CacheError(str(exc)) from exc
        return bool(result)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._redis.delete(*(self._k(k) for k in keys))
        except aioredis.RedisError as exc:
            raise CacheError(str(exc)) from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except aioredis.RedisError as exc:
            raise CacheError(str(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()


def create_cache(settings: Settings) -> Cache:
    """Redis when ``ATRIUM_REDIS__URL`` is set, otherwise in-process."""
    if settings.redis.url:
        return RedisCache(
            settings.redis.url,
            prefix=settings.redis.key_prefix,
            socket_timeout=settings.redis.socket_timeout_seconds,
        )
    return MemoryCache()
