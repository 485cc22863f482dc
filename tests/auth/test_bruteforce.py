"""Brute-force defence of password login: growing delays per account and per client
address, never a permanent lock, and the same answer whether or not the account exists."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atrium.config import HttpSettings, RateLimitSettings, RedisSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from atrium.models import AuditEvent
from tests.conftest import REDIS_URL, reset_database
from tests.factories import PASSWORD, register
from tests.mailbox import outbox

CLIENT_IP = "203.0.113.7"
LOGIN = "/api/v1/auth/login"
EMAIL = "ada@example.com"
WRONG = "not the password at all"
THRESHOLD = 3
BASE, CAP = 10, 40
PER_IP = 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit": RateLimitSettings(
                login="1000/minute",
                login_failures_per_account=THRESHOLD,
                login_failures_per_ip=PER_IP,
                login_delay_base_seconds=BASE,
                login_delay_max_seconds=CAP,
            ),
            # The test client is a trusted proxy: X-Forwarded-For chooses the client address.
            "http": HttpSettings(trusted_proxies=[CLIENT_IP]),
        }
    )


async def attempt(
    client: httpx.AsyncClient,
    email: str = EMAIL,
    password: str = PASSWORD,
    ip: str = "198.51.100.1",
) -> httpx.Response:
    return await client.post(
        LOGIN, data={"username": email, "password": password}, headers={"X-Forwarded-For": ip}
    )


async def fail(
    client: httpx.AsyncClient, times: int, email: str = EMAIL, ip: str = "198.51.100.1"
) -> None:
    for _ in range(times):
        response = await attempt(client, email, WRONG, ip=ip)
        assert response.status_code == 401, response.text


def assert_throttled(response: httpx.Response, wait: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "login_throttled"
    assert abs(int(response.headers["retry-after"]) - wait) <= 1


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> str:
    await register(client, EMAIL)
    return EMAIL


# --- per account ----------------------------------------------------------------------------


async def test_failures_below_the_threshold_do_not_throttle(
    client: httpx.AsyncClient, ada: str
) -> None:
    await fail(client, THRESHOLD - 1)

    response = await attempt(client)

    assert response.status_code == 200, response.text


async def test_right_password_is_throttled_after_threshold_failures(
    client: httpx.AsyncClient, ada: str
) -> None:
    await fail(client, THRESHOLD)

    assert_throttled(await attempt(client), BASE)


async def test_wrong_password_is_throttled_after_threshold_failures(
    client: httpx.AsyncClient, ada: str
) -> None:
    await fail(client, THRESHOLD)

    assert_throttled(await attempt(client, password=WRONG), BASE)


async def test_throttled_login_opens_no_session(client: httpx.AsyncClient, ada: str) -> None:
    await fail(client, THRESHOLD)

    response = await attempt(client)

    assert response.status_code == 429
    assert "access_token" not in response.text


async def test_throttle_is_not_a_permanent_lock(
    client: httpx.AsyncClient, clock: FrozenClock, ada: str
) -> None:
    await fail(client, THRESHOLD)
    assert (await attempt(client)).status_code == 429

    clock.advance(seconds=BASE + 1)
    response = await attempt(client)

    assert response.status_code == 200, response.text


async def test_throttle_still_holds_just_before_the_delay_ends(
    client: httpx.AsyncClient, clock: FrozenClock, ada: str
) -> None:
    await fail(client, THRESHOLD)

    clock.advance(seconds=BASE - 3)

    assert_throttled(await attempt(client), 3)


async def test_successful_login_clears_the_failure_count(
    client: httpx.AsyncClient, clock: FrozenClock, ada: str
) -> None:
    await fail(client, THRESHOLD)
    clock.advance(seconds=BASE + 1)
    assert (await attempt(client)).status_code == 200

    # From another address: the per-address count is not cleared by a success.
    await fail(client, THRESHOLD - 1, ip="198.51.100.2")
    response = await attempt(client, ip="198.51.100.2")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(THRESHOLD, BASE), (THRESHOLD + 1, 2 * BASE), (THRESHOLD + 2, CAP), (THRESHOLD + 3, CAP)],
    ids=["3_failures", "4_failures", "5_failures_reaches_cap", "6_failures_capped"],
)
async def test_delay_doubles_with_each_failure_up_to_the_cap(
    client: httpx.AsyncClient, clock: FrozenClock, ada: str, failures: int, wait: int
) -> None:
    await fail(client, THRESHOLD)
    for n in range(THRESHOLD + 1, failures + 1):
        clock.advance(seconds=CAP + 1)  # past any delay: the attempt is judged, and fails
        response = await attempt(client, password=WRONG)
        assert response.status_code == 401, (n, response.text)

    assert_throttled(await attempt(client), wait)


async def test_owner_gets_in_after_the_cap_however_many_failures(
    client: httpx.AsyncClient, clock: FrozenClock, ada: str
) -> None:
    await fail(client, THRESHOLD)
    for _ in range(6):
        clock.advance(seconds=CAP + 1)
        await attempt(client, password=WRONG)

    clock.advance(seconds=CAP + 1)
    response = await attempt(client)

    assert response.status_code == 200, response.text


async def test_throttling_one_account_leaves_other_accounts_alone(
    client: httpx.AsyncClient, ada: str
) -> None:
    await register(client, "bob@example.com")
    await fail(client, THRESHOLD)

    response = await attempt(client, "bob@example.com")

    assert response.status_code == 200, response.text


async def test_account_throttle_follows_the_account_across_addresses(
    client: httpx.AsyncClient, ada: str
) -> None:
    await fail(client, THRESHOLD)

    response = await attempt(client, ip="198.51.100.200")

    assert_throttled(response, BASE)


async def test_account_throttle_ignores_email_case(client: httpx.AsyncClient, ada: str) -> None:
    await fail(client, THRESHOLD)

    assert_throttled(await attempt(client, email=EMAIL.upper()), BASE)


# --- no account enumeration -----------------------------------------------------------------


async def test_unknown_email_is_throttled_exactly_like_a_known_one(
    client: httpx.AsyncClient, ada: str
) -> None:
    await fail(client, THRESHOLD, email=EMAIL, ip="198.51.100.1")
    await fail(client, THRESHOLD, email="nobody@example.com", ip="198.51.100.2")

    known = await attempt(client, EMAIL, WRONG, ip="198.51.100.1")
    unknown = await attempt(client, "nobody@example.com", WRONG, ip="198.51.100.2")

    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json()
    assert known.headers["retry-after"] == unknown.headers["retry-after"]
    assert known.headers["content-type"] == unknown.headers["content-type"]


async def test_unknown_email_fails_exactly_like_a_known_one_below_the_threshold(
    client: httpx.AsyncClient, ada: str
) -> None:
    known = await attempt(client, EMAIL, WRONG)
    unknown = await attempt(client, "nobody@example.com", WRONG)

    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()


# --- per client address ---------------------------------------------------------------------


async def test_many_accounts_failing_from_one_address_throttle_that_address(
    client: httpx.AsyncClient, ada: str
) -> None:
    for i in range(PER_IP):
        response = await attempt(client, f"victim{i}@example.com", WRONG, ip="198.51.100.66")
        assert response.status_code == 401, response.text

    response = await attempt(client, EMAIL, PASSWORD, ip="198.51.100.66")

    assert_throttled(response, BASE)


async def test_address_throttle_leaves_other_addresses_alone(
    client: httpx.AsyncClient, ada: str
) -> None:
    for i in range(PER_IP):
        await attempt(client, f"victim{i}@example.com", WRONG, ip="198.51.100.66")
    assert (await attempt(client, ip="198.51.100.66")).status_code == 429

    response = await attempt(client, EMAIL, PASSWORD, ip="198.51.100.67")

    assert response.status_code == 200, response.text


async def test_address_throttle_ends_after_its_delay(
    client: httpx.AsyncClient, clock: FrozenClock, ada: str
) -> None:
    for i in range(PER_IP):
        await attempt(client, f"victim{i}@example.com", WRONG, ip="198.51.100.66")

    clock.advance(seconds=BASE + 1)
    response = await attempt(client, EMAIL, PASSWORD, ip="198.51.100.66")

    assert response.status_code == 200, response.text


async def test_reaching_the_threshold_emails_the_owner_and_is_audited(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    for _ in range(THRESHOLD):
        await attempt(client, "ada@example.com", "not the password")

    notices = await outbox(ctx, "login_throttled")
    async with ctx.sessionmaker() as db:
        events = list(
            (
                await db.execute(
                    select(AuditEvent).where(AuditEvent.action == "auth.login_throttled")
                )
            ).scalars()
        )
    assert [m.to_address for m in notices] == ["ada@example.com"]
    assert len(events) == 1


async def test_throttling_an_unknown_email_sends_nothing(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    for _ in range(THRESHOLD + 1):
        await attempt(client, "nobody@example.com", "not the password")

    assert await outbox(ctx, "login_throttled") == []


# --- concurrency: one guess per delay window --------------------------------------------


@pytest.fixture(params=["in-process", "redis"])
def cache_backend(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The throttle's state in the in-process cache or in Redis (whatever the database)."""
    if request.param == "in-process":
        return settings.model_copy(update={"redis": RedisSettings()})
    if not REDIS_URL:
        pytest.skip("ATRIUM_TEST_REDIS_URL is not set")
    prefix = f"atrium-test:{uuid.uuid4().hex}:"
    # A loaded test machine can take over a second to answer: the throttle fails open on
    # Redis time-outs, which is not what this test is about.
    redis = RedisSettings(url=REDIS_URL, key_prefix=prefix, socket_timeout_seconds=30)
    return settings.model_copy(update={"redis": redis})


async def racing_guesses(app: Any, n: int) -> Counter[int]:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        responses = await asyncio.gather(
            *(attempt(c, EMAIL, f"{WRONG} {i}", ip=f"198.51.100.{10 + i}") for i in range(n))
        )
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in responses)
    return Counter(r.status_code for r in responses)


async def wrong_password_audits(ctx: AppContext) -> int:
    async with ctx.sessionmaker() as db:
        events = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login_failed"))
        ).all()
    return sum(1 for e in events if e.details.get("reason") == "wrong_password")


@pytest.mark.parametrize("known", [True, False], ids=["known-email", "unknown-email"])
async def test_concurrent_guesses_after_the_delay_are_judged_one_at_a_time(
    cache_backend: Settings, clock: FrozenClock, tmp_path: Path, known: bool
) -> None:
    app = create_app(cache_backend, clock)
    async with app.router.lifespan_context(app):
        ctx: AppContext = app.state.ctx
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            if known:
                await register(c, EMAIL)
            await fail(c, THRESHOLD)
        clock.advance(seconds=BASE + 1)

        statuses = await racing_guesses(app, 50)

        assert statuses == {401: 1, 429: 49}, statuses
        if known:
            assert await wrong_password_audits(ctx) == THRESHOLD + 1
        await reset_if_shared(app)


async def test_concurrent_guesses_on_a_fresh_account_are_judged_one_at_a_time(
    cache_backend: Settings, clock: FrozenClock
) -> None:
    app = create_app(cache_backend, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            await register(c, EMAIL)

        statuses = await racing_guesses(app, 50)

        # The guard serialises the attempts: those that arrive while one is being verified
        # are refused, and the ones judged cannot exceed the threshold before delays start.
        assert statuses[401] <= THRESHOLD, statuses
        assert statuses[401] + statuses[429] == 50, statuses
        await reset_if_shared(app)


async def test_the_guard_is_released_after_each_attempt(
    client: httpx.AsyncClient, ada: str
) -> None:
    for _ in range(THRESHOLD - 1):
        assert (await attempt(client, password=WRONG)).status_code == 401

    assert (await attempt(client)).status_code == 200
    assert (await attempt(client)).status_code == 200


async def reset_if_shared(app: Any) -> None:
    ctx: AppContext = app.state.ctx
    if ctx.engine.dialect.name == "postgresql":
        await reset_database(ctx.engine)
