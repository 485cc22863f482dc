"""Rate limits: 429 ``rate_limited`` with Retry-After, the RateLimit-* headers, limits per
client address, Redis outages (fail-open and fail-closed) and limits shared by two app
instances through Redis; RateLimiter's count/record/reset on the in-process storage."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from atrium.config import (
    Environment,
    HttpSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
)
from atrium.core.clock import FrozenClock
from atrium.core.ratelimit import RateLimited, RateLimiter
from atrium.main import create_app
from tests.factories import PASSWORD, login, register

REDIS_URL = os.environ.get("ATRIUM_TEST_REDIS_URL")
CLIENT_IP = "203.0.113.7"
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
EMAIL = "ada@example.com"
LIMITS = RateLimitSettings(
    registration="3/minute",
    login="3/minute",
    refresh="3/minute",
    # High enough that the brute-force defence (tests/auth/test_bruteforce.py) stays out.
    login_failures_per_account=1000,
    login_failures_per_ip=1000,
)
DOWN_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def rate_limit() -> RateLimitSettings:
    return LIMITS


@pytest.fixture
def redis(request: pytest.FixtureRequest) -> RedisSettings | None:
    """Redis for this test; None keeps the conftest choice (Redis for postgresql when set)."""
    if "shared_redis" in request.fixturenames:
        shared: RedisSettings = request.getfixturevalue("shared_redis")
        return shared
    return None


@pytest.fixture
def settings(
    settings: Settings, rate_limit: RateLimitSettings, redis: RedisSettings | None
) -> Settings:
    # The test client is a trusted proxy, so X-Forwarded-For chooses the client address.
    return settings.model_copy(
        update={
            "rate_limit": rate_limit,
            "redis": redis or settings.redis,
            "http": HttpSettings(trusted_proxies=[CLIENT_IP]),
        }
    )


def email(i: int) -> str:
    return f"user{i}@example.com"


async def register_as(client: httpx.AsyncClient, i: int, ip: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(
        REGISTER, json={"email": email(i), "password": PASSWORD}, headers=headers
    )


async def login_as(
    client: httpx.AsyncClient, password: str = PASSWORD, ip: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(LOGIN, data={"username": EMAIL, "password": password}, headers=headers)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def assert_rate_limited(response: httpx.Response, window_seconds: int = 60) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert 1 <= int(response.headers["retry-after"]) <= window_seconds


def ratelimit_headers(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["ratelimit-limit"]),
        int(response.headers["ratelimit-remaining"]),
        int(response.headers["ratelimit-reset"]),
    )


# --- registration ---------------------------------------------------------------------------


async def test_registration_past_the_limit_is_429_rate_limited_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    for i in range(3):
        assert (await register_as(client, i)).status_code == 201

    assert_rate_limited(await register_as(client, 3))


async def test_registration_within_the_limit_carries_decreasing_ratelimit_headers(
    client: httpx.AsyncClient,
) -> None:
    responses = [await register_as(client, i) for i in range(3)]

    assert [r.status_code for r in responses] == [201, 201, 201]
    states = [ratelimit_headers(r) for r in responses]
    assert [limit for limit, _, _ in states] == [3, 3, 3]
    assert [remaining for _, remaining, _ in states] == [2, 1, 0]
    assert all(0 <= reset <= 60 for _, _, reset in states)


async def test_rate_limited_response_carries_ratelimit_headers_with_none_remaining(
    client: httpx.AsyncClient,
) -> None:
    for i in range(3):
        await register_as(client, i)

    response = await register_as(client, 3)

    assert response.status_code == 429
    limit, remaining, reset = ratelimit_headers(response)
    assert (limit, remaining) == (3, 0)
    assert 0 < reset <= 60


async def test_rate_limited_response_has_each_ratelimit_header_once(
    client: httpx.AsyncClient,
) -> None:
    for i in range(4):
        response = await register_as(client, i)

    assert response.status_code == 429
    for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"):
        assert len(response.headers.get_list(name)) == 1, name


async def test_refused_registration_creates_no_account(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await register_as(client, i)
    assert (await register_as(client, 3)).status_code == 429

    # From another address the same email is still free: the refused request stored nothing.
    response = await register_as(client, 3, ip="198.51.100.50")

    assert response.status_code == 201, response.text


async def test_rate_limit_rejection_is_counted_by_limit(client: httpx.AsyncClient) -> None:
    labels = {"limit": "register"}
    before = sample("atrium_rate_limit_rejections_total", labels)
    for i in range(4):
        await register_as(client, i)

    assert sample("atrium_rate_limit_rejections_total", labels) == before + 1


async def test_route_without_a_limit_has_no_ratelimit_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert "ratelimit-limit" not in response.headers


# --- login and refresh ----------------------------------------------------------------------


async def test_login_past_the_limit_is_429_rate_limited(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    for _ in range(3):
        assert (await login_as(client)).status_code == 200

    assert_rate_limited(await login_as(client))


async def test_failed_logins_count_against_the_login_limit(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    for _ in range(3):
        assert (await login_as(client, "wrong password!")).status_code == 401

    assert_rate_limited(await login_as(client))


async def test_login_responses_carry_decreasing_ratelimit_headers(
    client: httpx.AsyncClient,
) -> None:
    await register(client, EMAIL)

    ok = await login_as(client)
    failed = await login_as(client, "wrong password!")

    assert (ok.status_code, failed.status_code) == (200, 401)
    assert ratelimit_headers(ok)[:2] == (3, 2)
    assert ratelimit_headers(failed)[:2] == (3, 1)


async def test_refresh_past_the_limit_is_429_rate_limited(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    token = (await login(client, EMAIL))["refresh_token"]
    for _ in range(3):
        response = await client.post(REFRESH, json={"refresh_token": token})
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]

    assert_rate_limited(await client.post(REFRESH, json={"refresh_token": token}))


async def test_refused_refresh_leaves_the_refresh_token_usable(
    client: httpx.AsyncClient,
) -> None:
    await register(client, EMAIL)
    token = (await login(client, EMAIL))["refresh_token"]
    for _ in range(3):
        await client.post(REFRESH, json={"refresh_token": "x" * 43})
    assert (await client.post(REFRESH, json={"refresh_token": token})).status_code == 429

    response = await client.post(
        REFRESH, json={"refresh_token": token}, headers={"X-Forwarded-For": "198.51.100.50"}
    )

    assert response.status_code == 200, response.text


async def test_refresh_responses_carry_decreasing_ratelimit_headers(
    client: httpx.AsyncClient,
) -> None:
    await register(client, EMAIL)
    token = (await login(client, EMAIL))["refresh_token"]

    ok = await client.post(REFRESH, json={"refresh_token": token})
    bad = await client.post(REFRESH, json={"refresh_token": "x" * 43})

    assert (ok.status_code, bad.status_code) == (200, 401)
    assert ratelimit_headers(ok)[:2] == (3, 2)
    assert ratelimit_headers(bad)[:2] == (3, 1)


# --- per client address ---------------------------------------------------------------------


async def test_registration_limit_is_counted_per_client_address(
    client: httpx.AsyncClient,
) -> None:
    for i in range(3):
        assert (await register_as(client, i, ip="198.51.100.1")).status_code == 201
    assert (await register_as(client, 3, ip="198.51.100.1")).status_code == 429

    response = await register_as(client, 4, ip="198.51.100.2")

    assert response.status_code == 201, response.text
    assert ratelimit_headers(response)[1] == 2


async def test_login_limit_is_counted_per_client_address(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    for _ in range(3):
        await login_as(client, ip="198.51.100.1")
    assert (await login_as(client, ip="198.51.100.1")).status_code == 429

    response = await login_as(client, ip="198.51.100.2")

    assert response.status_code == 200, response.text


async def test_forwarded_address_from_an_untrusted_client_does_not_escape_the_limit(
    app: Any,
) -> None:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.77", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        for i in range(3):
            assert (await register_as(c, i, ip=f"192.0.2.{i}")).status_code == 201

        assert_rate_limited(await register_as(c, 3, ip="192.0.2.99"))


# --- Redis unavailable ----------------------------------------------------------------------


@pytest.mark.parametrize("redis", [RedisSettings(url=DOWN_REDIS)])
async def test_registration_is_served_when_redis_is_down_and_fail_open(
    client: httpx.AsyncClient,
) -> None:
    response = await register_as(client, 0)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("redis", [RedisSettings(url=DOWN_REDIS)])
async def test_storage_error_served_is_counted_when_redis_is_down_and_fail_open(
    client: httpx.AsyncClient,
) -> None:
    labels = {"decision": "served"}
    before = sample("atrium_rate_limit_backend_errors_total", labels)

    await register_as(client, 0)

    assert sample("atrium_rate_limit_backend_errors_total", labels) > before


@pytest.mark.parametrize("redis", [RedisSettings(url=DOWN_REDIS)])
async def test_login_is_served_when_redis_is_down_and_fail_open(
    client: httpx.AsyncClient,
) -> None:
    await register(client, EMAIL)

    ok = await login_as(client)
    wrong = await login_as(client, "wrong password!")

    assert (ok.status_code, wrong.status_code) == (200, 401), (ok.text, wrong.text)


@pytest.mark.parametrize("redis", [RedisSettings(url=DOWN_REDIS)])
@pytest.mark.parametrize("rate_limit", [LIMITS.model_copy(update={"fail_open": False})])
async def test_registration_is_503_service_unavailable_when_redis_is_down_and_fail_closed(
    client: httpx.AsyncClient,
) -> None:
    labels = {"decision": "refused"}
    before = sample("atrium_rate_limit_backend_errors_total", labels)

    response = await register_as(client, 0)

    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert sample("atrium_rate_limit_backend_errors_total", labels) > before


@pytest.mark.parametrize("redis", [RedisSettings(url=DOWN_REDIS)])
@pytest.mark.parametrize("rate_limit", [LIMITS.model_copy(update={"fail_open": False})])
@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", LOGIN, {"data": {"username": EMAIL, "password": PASSWORD}}),
        ("POST", REFRESH, {"json": {"refresh_token": "x" * 43}}),
        ("GET", "/health/live", {}),
    ],
    ids=["login", "refresh", "live"],
)
async def test_no_server_error_when_redis_is_down_and_fail_closed(
    app: Any, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 1), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        response = await c.request(method, url, **kwargs)

    assert response.status_code < 500 or response.status_code == 503, response.text
    if response.status_code == 503:
        assert response.json()["code"] == "service_unavailable"


@pytest.mark.parametrize("redis", [RedisSettings(url=DOWN_REDIS)])
@pytest.mark.parametrize("rate_limit", [LIMITS.model_copy(update={"fail_open": False})])
async def test_login_is_503_when_redis_is_down_and_fail_closed(
    client: httpx.AsyncClient,
) -> None:
    response = await login_as(client)

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"


# --- two app instances sharing Redis --------------------------------------------------------


@pytest.fixture
def shared_redis() -> RedisSettings:
    if not REDIS_URL:
        pytest.skip("ATRIUM_TEST_REDIS_URL is not set")
    return RedisSettings(url=REDIS_URL, key_prefix=f"atrium-test:{uuid.uuid4().hex}:")


@pytest.fixture
async def second_client(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second app instance built from the same settings (same Redis, same DB)."""
    other = create_app(settings, clock)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=(CLIENT_IP, 52000))
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            yield c


@pytest.mark.parametrize("which", ["first", "second"])
async def test_limit_holds_across_two_app_instances_sharing_redis(
    shared_redis: RedisSettings,
    settings: Settings,
    client: httpx.AsyncClient,
    second_client: httpx.AsyncClient,
    which: str,
) -> None:
    assert settings.redis == shared_redis
    assert (await register_as(client, 0)).status_code == 201
    assert (await register_as(client, 1)).status_code == 201
    assert (await register_as(second_client, 2)).status_code == 201

    response = await register_as(client if which == "first" else second_client, 3)

    assert_rate_limited(response)


# --- RateLimiter on the in-process storage --------------------------------------------------


@pytest.fixture
def limiter(tmp_path: Path) -> RateLimiter:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path,
        redis=RedisSettings(),
        rate_limit=RateLimitSettings(registration="3/minute", login_failure_window="5/minute"),
    )
    return RateLimiter(settings)


async def test_limiter_uses_the_in_process_storage_without_redis(limiter: RateLimiter) -> None:
    from limits.aio.storage import MemoryStorage

    assert isinstance(limiter.storage, MemoryStorage)


async def test_limiter_count_is_zero_for_an_unknown_key(limiter: RateLimiter) -> None:
    assert await limiter.count("login_failures_account", "nobody") == 0


async def test_limiter_record_increments_the_count(limiter: RateLimiter) -> None:
    await limiter.record("login_failures_account", "k")
    await limiter.record("login_failures_account", "k")

    assert await limiter.count("login_failures_account", "k") == 2


async def test_limiter_record_never_refuses_past_the_limit(limiter: RateLimiter) -> None:
    for _ in range(7):
        await limiter.record("login_failures_account", "k")

    assert await limiter.count("login_failures_account", "k") == 5


async def test_limiter_counts_keys_separately(limiter: RateLimiter) -> None:
    await limiter.record("login_failures_account", "a")

    assert await limiter.count("login_failures_account", "b") == 0


async def test_limiter_counts_limits_separately(limiter: RateLimiter) -> None:
    await limiter.record("login_failures_account", "k")

    assert await limiter.count("login_failures_ip", "k") == 0


async def test_limiter_reset_clears_the_count(limiter: RateLimiter) -> None:
    await limiter.record("login_failures_account", "k")
    await limiter.record("login_failures_account", "k")

    await limiter.reset("login_failures_account", "k")

    assert await limiter.count("login_failures_account", "k") == 0


async def test_limiter_reset_leaves_other_keys(limiter: RateLimiter) -> None:
    await limiter.record("login_failures_account", "a")
    await limiter.record("login_failures_account", "b")

    await limiter.reset("login_failures_account", "a")

    assert await limiter.count("login_failures_account", "b") == 1


async def test_limiter_hit_reports_the_remaining_requests(limiter: RateLimiter) -> None:
    first = await limiter.hit("register", "ip")
    second = await limiter.hit("register", "ip")

    assert first is not None
    assert second is not None
    assert (first.limit, first.remaining) == (3, 2)
    assert (second.limit, second.remaining) == (3, 1)
    assert 0 < second.reset_seconds <= 60


async def test_limiter_hit_raises_rate_limited_past_the_limit(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("register", "ip")

    with pytest.raises(RateLimited) as caught:
        await limiter.hit("register", "ip")

    assert 1 <= caught.value.retry_after <= 60
    assert caught.value.headers["Retry-After"] == str(caught.value.retry_after)


async def test_limiter_hit_counts_towards_count(limiter: RateLimiter) -> None:
    await limiter.hit("register", "ip")

    assert await limiter.count("register", "ip") == 1


async def test_limiter_hit_reports_the_tightest_window(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path,
        rate_limit=RateLimitSettings(registration="10/minute;2/hour"),
    )
    state = await RateLimiter(settings).hit("register", "ip")

    assert state is not None
    assert (state.limit, state.remaining) == (2, 1)


async def test_disabled_limiter_neither_counts_nor_refuses(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path,
        rate_limit=RateLimitSettings(enabled=False, registration="1/minute"),
    )
    disabled = RateLimiter(settings)

    results = [await disabled.hit("register", "ip") for _ in range(3)]
    await disabled.record("register", "ip")

    assert results == [None, None, None]
    assert await disabled.count("register", "ip") == 0
