"""Rate limits: in-process and on Redis; a storage outage does not lock users out."""

from __future__ import annotations

import uuid

import pytest

from atrium.config import RedisSettings, Settings
from atrium.core.ratelimit import RateLimited, create_rate_limiter
from tests.conftest import REDIS_URL
from tests.mailbox import free_port

BACKENDS = ["memory"] + (["redis"] if REDIS_URL else [])


def _settings(redis_url: str | None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis=RedisSettings(
            url=redis_url, key_prefix=f"atrium-test:{uuid.uuid4().hex}:", socket_timeout_seconds=0.5
        ),
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_hits_past_the_limit_are_refused_with_retry_after(backend: str) -> None:
    limiter = create_rate_limiter(_settings(REDIS_URL if backend == "redis" else None))
    for _ in range(3):
        await limiter.hit("3/hour", "k", "ada")

    with pytest.raises(RateLimited) as refused:
        await limiter.hit("3/hour", "k", "ada")

    assert refused.value.status == 429
    assert 3500 < int(refused.value.headers["Retry-After"]) <= 3600
    assert refused.value.headers["RateLimit-Remaining"] == "0"
    await limiter.hit("3/hour", "k", "bob")  # another key has its own window
    await limiter.close()


async def test_unreachable_redis_lets_the_hit_through() -> None:
    limiter = create_rate_limiter(_settings(f"redis://127.0.0.1:{free_port()}/0"))

    for _ in range(5):
        await limiter.hit("1/hour", "k", "ada")
    await limiter.close()
