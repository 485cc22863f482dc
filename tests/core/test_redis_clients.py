"""Atrium's Redis connections: what they report of themselves, and at what cost.

Needs ``ATRIUM_TEST_REDIS_URL``."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import redis
import redis.utils

from atrium.config import RedisSettings, Settings
from atrium.core.bus import RedisBus
from atrium.core.cache import RedisCache
from atrium.core.ratelimit import RateLimiter

REDIS_URL = os.environ.get("ATRIUM_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs ATRIUM_TEST_REDIS_URL")


def _no_metadata_lookup() -> str:
    raise AssertionError("redis-py looked its version up in the package metadata")


async def test_connections_report_redis_py_without_a_metadata_lookup_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # redis-py calls this (importlib.metadata, a search of sys.path) for every new
    # connection unless it is told what to report.
    monkeypatch.setattr(redis.utils, "get_lib_version", _no_metadata_lookup)
    assert REDIS_URL is not None
    prefix = f"atrium-test:clients:{uuid.uuid4().hex}:"
    settings = Settings(_env_file=None, redis=RedisSettings(url=REDIS_URL, key_prefix=prefix))
    cache = RedisCache(REDIS_URL, prefix=prefix, socket_timeout=5)
    limiter = RateLimiter(settings)
    bus = RedisBus(REDIS_URL, prefix, socket_timeout=5)
    try:
        await cache.set("k", b"v", 60)
        assert await cache.get_many(["k"]) == [b"v"]
        assert await limiter.hit("login", "203.0.113.7") is not None
        await bus.publish("topic", b"x")

        # What each pool's connections send with CLIENT SETINFO (Redis 7.2 and later; an
        # older server refuses it and redis-py goes on). The bus listens on a pool of its own.
        pools: list[Any] = [p.connection_pool for p in (cache._redis, bus._redis)]
        pools += [bus._listener_redis.connection_pool, limiter._pool]
        for pool in pools:
            connection = await pool.get_connection()
            try:
                info = connection.driver_info
                assert (info.name, info.lib_version) == ("redis-py", redis.__version__)
            finally:
                await pool.release(connection)
    finally:
        await cache.delete("k")
        await cache.close()
        await limiter.close()
        await bus.close()
