"""The principal cache: what an authenticated request costs, and revocation despite caching.

Also unit tests of the cache backends (``MemoryCache`` and, with ``ATRIUM_TEST_REDIS_URL``,
``RedisCache``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

import atrium.core.cache as cache_module
from atrium.auth.repository import SessionRepository
from atrium.config import Settings
from atrium.context import AppContext
from atrium.core.cache import Cache, CacheError, MemoryCache, RedisCache
from atrium.core.clock import FrozenClock
from atrium.core.db import before_commit, unit_of_work
from atrium.main import create_app
from tests.conftest import Database, QueryCounter, reset_database
from tests.factories import login, register
from tests.ui.conftest import post_form as browser_post_form
from tests.ui.conftest import sign_in as browser_sign_in

REDIS_URL = os.environ.get("ATRIUM_TEST_REDIS_URL")
ME = "/api/v1/users/me"
EMAIL = "ada@example.com"
COOKIE = "__Host-atrium_session"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def session_id(ctx: AppContext, tokens: dict[str, Any]) -> str:
    return str(ctx.tokens.verify(tokens["access_token"], now=ctx.clock.now()).session_id)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[QueryCounter]:
    """Like the ``queries`` fixture, for an app built by the test."""
    counter = QueryCounter()

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


class FakeMonotonic:
    """Stands in for ``time.monotonic`` inside atrium.core.cache (MemoryCache lifetimes)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_monotonic(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    """MemoryCaches created after this fixture live on a clock the test moves."""
    fake = FakeMonotonic()
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


Started = tuple[Any, httpx.AsyncClient]


@pytest.fixture
async def serve(
    settings: Settings, clock: FrozenClock, database: Database
) -> AsyncIterator[Callable[..., Awaitable[Started]]]:
    """Start apps built by ``create_app`` (one per call); all are shut down after the test."""
    apps: list[Any] = []
    async with AsyncExitStack() as stack:

        async def start(app_settings: Settings | None = None) -> Started:
            app = create_app(app_settings or settings, clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://atrium.test")
            )
            apps.append(app)
            return app, client

        yield start
        if database.backend == "postgresql" and apps:
            ctx: AppContext = apps[0].state.ctx
            await reset_database(ctx.engine)


# --- cost of an authenticated request ----------------------------------------------------


# A cold principal costs two statements: the session joined with its user, and the
# user's role names (shown by GET /users/me).
COLD = 2


async def test_first_get_me_after_login_issues_at_most_two_statements(
    client: httpx.AsyncClient, queries: QueryCounter
) -> None:
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    queries.statements.clear()

    response = await client.get(ME, headers=auth)

    assert response.status_code == 200
    assert queries.count <= COLD, queries.statements


async def test_following_get_me_issue_no_statement(
    client: httpx.AsyncClient, queries: QueryCounter
) -> None:
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    await client.get(ME, headers=auth)
    queries.statements.clear()

    for _ in range(3):
        assert (await client.get(ME, headers=auth)).status_code == 200

    assert queries.count == 0, queries.statements


async def test_other_session_of_a_cached_user_reads_the_database_once(
    client: httpx.AsyncClient, queries: QueryCounter
) -> None:
    await register(client, EMAIL)
    await client.get(ME, headers=bearer(await login(client, EMAIL)))
    other = bearer(await login(client, EMAIL))
    queries.statements.clear()

    await client.get(ME, headers=other)
    await client.get(ME, headers=other)

    assert queries.count <= COLD, queries.statements


async def test_with_principal_cache_disabled_every_get_me_reads_the_database(
    settings: Settings, serve: Callable[..., Awaitable[Started]]
) -> None:
    no_cache = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"principal_cache_ttl_seconds": 0.0})}
    )
    app, client = await serve(no_cache)
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))

    with count_statements(app.state.ctx.engine) as counter:
        for _ in range(3):
            assert (await client.get(ME, headers=auth)).status_code == 200

    assert counter.count == 3 * COLD, counter.statements


async def test_cached_principal_is_read_again_once_its_lifetime_has_passed(
    settings: Settings,
    fake_monotonic: FakeMonotonic,
    serve: Callable[..., Awaitable[Started]],
) -> None:
    if settings.redis.url:
        pytest.skip("lifetimes of the in-process cache only; Redis expires entries itself")
    app, client = await serve()
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    await client.get(ME, headers=auth)

    fake_monotonic.advance(settings.auth.principal_cache_ttl_seconds + 0.1)
    with count_statements(app.state.ctx.engine) as counter:
        assert (await client.get(ME, headers=auth)).status_code == 200

    assert counter.count == COLD, counter.statements


# --- revocation despite caching ----------------------------------------------------------


async def test_revoked_session_is_refused_even_when_its_principal_was_cached(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, EMAIL)
    first = await login(client, EMAIL, user_agent="first")
    second = await login(client, EMAIL, user_agent="second")
    assert (await client.get(ME, headers=bearer(first))).status_code == 200  # cached

    revoked = await client.delete(f"{ME}/sessions/{session_id(ctx, first)}", headers=bearer(second))
    assert revoked.status_code == 204
    response = await client.get(ME, headers=bearer(first))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_a_revocation_rolled_back_leaves_the_session_working(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """Tombstones are written after the commit: a transaction that revokes and then fails
    must not leave a live session refused for an access token's lifetime."""
    await register(client, EMAIL)
    tokens = await login(client, EMAIL)
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200  # cached
    sid = uuid.UUID(session_id(ctx, tokens))

    async def revoke(fail: bool) -> None:
        async with unit_of_work(ctx.sessionmaker) as db:
            assert await SessionRepository(db).revoke_session(sid, ctx.clock.now(), "test")
            ctx.principals.revoke_on_commit(db, [sid])
            if fail:
                raise RuntimeError("after the revocation, before the commit")

    with pytest.raises(RuntimeError):
        await revoke(fail=True)
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200

    await revoke(fail=False)
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 401


async def test_logged_out_session_is_refused_even_when_its_principal_was_cached(
    client: httpx.AsyncClient,
) -> None:
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    assert (await client.get(ME, headers=auth)).status_code == 200  # cached

    assert (await client.post("/api/v1/auth/logout", headers=auth)).status_code == 204
    response = await client.get(ME, headers=auth)

    assert response.status_code == 401


async def test_revocation_on_another_worker_is_honoured_within_the_cache_lifetime(
    settings: Settings,
    fake_monotonic: FakeMonotonic,
    serve: Callable[..., Awaitable[Started]],
) -> None:
    """Two workers, each with its own cache (or sharing Redis) and the same database."""
    _, worker_a = await serve()
    _, worker_b = await serve()
    await register(worker_a, EMAIL)
    auth = bearer(await login(worker_a, EMAIL))
    assert (await worker_a.get(ME, headers=auth)).status_code == 200  # cached on A
    assert (await worker_b.post("/api/v1/auth/logout", headers=auth)).status_code == 204

    fake_monotonic.advance(settings.auth.principal_cache_ttl_seconds + 0.1)
    response = await worker_a.get(ME, headers=auth)

    assert response.status_code == 401


@pytest.mark.skipif(not REDIS_URL, reason="set ATRIUM_TEST_REDIS_URL to test a shared Redis cache")
async def test_logout_on_one_node_is_refused_at_once_on_another_sharing_redis(
    settings: Settings, serve: Callable[..., Awaitable[Started]]
) -> None:
    if not settings.redis.url:
        pytest.skip("this backend uses the in-process cache; Redis is configured for postgresql")
    app_a, node_a = await serve()
    app_b, node_b = await serve()
    assert app_a.state.ctx.cache is not app_b.state.ctx.cache
    await register(node_a, EMAIL)
    auth = bearer(await login(node_a, EMAIL))
    assert (await node_b.get(ME, headers=auth)).status_code == 200  # warms B's cache
    with count_statements(app_b.state.ctx.engine) as counter:
        assert (await node_b.get(ME, headers=auth)).status_code == 200
    assert counter.count == 0  # B answers from the cache

    assert (await node_a.post("/api/v1/auth/logout", headers=auth)).status_code == 204
    response = await node_b.get(ME, headers=auth)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


# --- cache unavailable -------------------------------------------------------------------


async def _raise_cache_error(*_: Any, **__: Any) -> Any:
    raise CacheError("cache down (test)")


async def test_get_me_falls_back_to_the_database_when_the_cache_read_fails(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    await client.get(ME, headers=auth)
    monkeypatch.setattr(ctx.cache, "get_many", _raise_cache_error)

    response = await client.get(ME, headers=auth)

    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


async def test_get_me_works_when_every_cache_operation_fails(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    for name in ("get_many", "set", "set_many", "add", "delete"):
        monkeypatch.setattr(ctx.cache, name, _raise_cache_error)

    response = await client.get(ME, headers=auth)

    assert response.status_code == 200
    assert response.json()["id"] == created["id"]


async def test_a_logout_that_cannot_be_published_answers_503_and_changes_nothing(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other nodes may hold the session in the shared cache: a revocation that cannot be
    announced there is not made (and not reported done)."""
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    with monkeypatch.context() as down:
        for name in ("get_many", "set", "set_many", "add", "delete", "delete_if"):
            down.setattr(ctx.cache, name, _raise_cache_error)

        response = await client.post("/api/v1/auth/logout", headers=auth)

        assert response.status_code == 503
        assert response.json()["code"] == "service_unavailable"
        assert "retry-after" in response.headers
        assert (await client.get(ME, headers=auth)).status_code == 200  # not revoked

    assert (await client.post("/api/v1/auth/logout", headers=auth)).status_code == 204
    assert (await client.get(ME, headers=auth)).status_code == 401


async def test_a_revocation_whose_commit_fails_leaves_the_session_working(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """The pending marker written before the commit is withdrawn when the commit fails."""
    await register(client, EMAIL)
    tokens = await login(client, EMAIL)
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200  # cached
    sid = uuid.UUID(session_id(ctx, tokens))

    async def failing_commit() -> None:
        raise RuntimeError("the commit failed")

    async def revoke() -> None:
        async with unit_of_work(ctx.sessionmaker) as db:
            assert await SessionRepository(db).revoke_session(sid, ctx.clock.now(), "test")
            ctx.principals.revoke_on_commit(db, [sid])
            before_commit(db, failing_commit)  # runs after the marker was written

    with pytest.raises(RuntimeError):
        await revoke()

    assert (await ctx.cache.get_many([f"sess:{sid}"])) == [None]  # marker withdrawn
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200


# --- the cache backends ------------------------------------------------------------------

KEYS = ("a", "b", "c")
CACHES = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not REDIS_URL, reason="set ATRIUM_TEST_REDIS_URL to test Redis"),
    ),
]


@pytest.fixture(params=CACHES)
async def cache(
    request: pytest.FixtureRequest, fake_monotonic: FakeMonotonic
) -> AsyncIterator[Cache]:
    """An empty cache; a RedisCache gets a prefix of its own."""
    backend: Cache
    if request.param == "memory":
        backend = MemoryCache()
    else:
        assert REDIS_URL is not None
        backend = RedisCache(
            REDIS_URL, prefix=f"atrium-test:{uuid.uuid4().hex}:", socket_timeout=1.0
        )
    yield backend
    await backend.delete(*KEYS)
    await backend.close()


async def test_get_many_of_absent_keys_is_none_for_each(cache: Cache) -> None:
    assert await cache.get_many(["a", "b"]) == [None, None]


async def test_get_many_returns_values_in_the_order_of_the_keys(cache: Cache) -> None:
    await cache.set("a", b"1", 60)
    await cache.set("c", b"3", 60)

    assert await cache.get_many(["c", "b", "a"]) == [b"3", None, b"1"]


async def test_set_overwrites_a_present_value(cache: Cache) -> None:
    await cache.set("a", b"old", 60)

    await cache.set("a", b"new", 60)

    assert await cache.get_many(["a"]) == [b"new"]


async def test_set_many_sets_every_key_and_overwrites_present_ones(cache: Cache) -> None:
    await cache.set("a", b"old", 60)

    await cache.set_many({"a": b"1", "b": b"2"}, 60)
    await cache.set_many({}, 60)  # nothing to do

    assert await cache.get_many(KEYS) == [b"1", b"2", None]


async def test_add_sets_an_absent_key_and_returns_true(cache: Cache) -> None:
    assert await cache.add("a", b"1", 60) is True
    assert await cache.get_many(["a"]) == [b"1"]


async def test_add_returns_false_and_keeps_a_present_value(cache: Cache) -> None:
    await cache.set("a", b"0", 60)

    assert await cache.add("a", b"1", 60) is False
    assert await cache.get_many(["a"]) == [b"0"]


async def test_delete_removes_every_given_key(cache: Cache) -> None:
    for key in KEYS:
        await cache.set(key, b"x", 60)

    await cache.delete("a", "b")

    assert await cache.get_many(list(KEYS)) == [None, None, b"x"]


async def test_delete_of_absent_or_no_keys_is_a_no_op(cache: Cache) -> None:
    await cache.delete("a")
    await cache.delete()

    assert await cache.get_many(["a"]) == [None]


async def test_ping_of_a_reachable_cache_succeeds(cache: Cache) -> None:
    assert await cache.ping() is None  # raises CacheError when unreachable


async def test_keys_of_different_prefixes_do_not_collide() -> None:
    if not REDIS_URL:
        pytest.skip("set ATRIUM_TEST_REDIS_URL to test Redis")
    one = RedisCache(REDIS_URL, prefix=f"atrium-test:{uuid.uuid4().hex}:", socket_timeout=1.0)
    two = RedisCache(REDIS_URL, prefix=f"atrium-test:{uuid.uuid4().hex}:", socket_timeout=1.0)
    try:
        await one.set("a", b"1", 60)
        assert await two.get_many(["a"]) == [None]
    finally:
        await one.delete("a")
        await one.close()
        await two.close()


async def test_memory_cache_entry_is_present_until_its_lifetime_ends(
    fake_monotonic: FakeMonotonic,
) -> None:
    cache = MemoryCache()
    await cache.set("a", b"1", 10)

    fake_monotonic.advance(9.9)

    assert await cache.get_many(["a"]) == [b"1"]


async def test_memory_cache_entry_expires_after_its_lifetime(
    fake_monotonic: FakeMonotonic,
) -> None:
    cache = MemoryCache()
    await cache.set("a", b"1", 10)

    fake_monotonic.advance(10.1)

    assert await cache.get_many(["a"]) == [None]


async def test_memory_cache_entries_of_set_many_expire_after_their_lifetime(
    fake_monotonic: FakeMonotonic,
) -> None:
    cache = MemoryCache()
    await cache.set_many({"a": b"1", "b": b"2"}, 10)

    fake_monotonic.advance(9.9)
    assert await cache.get_many(["a", "b"]) == [b"1", b"2"]
    fake_monotonic.advance(0.2)
    assert await cache.get_many(["a", "b"]) == [None, None]


async def test_memory_cache_add_succeeds_once_the_present_entry_expired(
    fake_monotonic: FakeMonotonic,
) -> None:
    cache = MemoryCache()
    await cache.set("a", b"0", 10)
    fake_monotonic.advance(10.1)

    assert await cache.add("a", b"1", 10) is True
    assert await cache.get_many(["a"]) == [b"1"]


async def test_memory_cache_entries_expire_individually(fake_monotonic: FakeMonotonic) -> None:
    cache = MemoryCache()
    await cache.set("short", b"1", 5)
    await cache.set("long", b"2", 60)

    fake_monotonic.advance(6)

    assert await cache.get_many(["short", "long"]) == [None, b"2"]


@pytest.mark.skipif(not REDIS_URL, reason="set ATRIUM_TEST_REDIS_URL to test Redis")
async def test_redis_cache_entry_expires_after_its_lifetime() -> None:
    assert REDIS_URL is not None
    cache = RedisCache(REDIS_URL, prefix=f"atrium-test:{uuid.uuid4().hex}:", socket_timeout=1.0)
    try:
        await cache.set("a", b"1", 0.05)
        await cache.add("b", b"2", 0.05)
        await asyncio.sleep(0.15)

        assert await cache.get_many(["a", "b"]) == [None, None]
    finally:
        await cache.close()


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[RedisCache]:
    cache = RedisCache("redis://127.0.0.1:1/0", prefix="atrium-test:", socket_timeout=0.5)
    yield cache
    await cache.close()


UNREACHABLE_CALLS: dict[str, Callable[[RedisCache], Awaitable[object]]] = {
    "get_many": lambda c: c.get_many(["a"]),
    "set": lambda c: c.set("a", b"1", 1),
    "add": lambda c: c.add("a", b"1", 1),
    "delete": lambda c: c.delete("a"),
    "ping": lambda c: c.ping(),
}


@pytest.mark.parametrize("operation", list(UNREACHABLE_CALLS))
async def test_unreachable_redis_raises_cache_error_not_a_redis_exception(
    unreachable_redis: RedisCache, operation: str
) -> None:
    with pytest.raises(CacheError) as caught:
        await UNREACHABLE_CALLS[operation](unreachable_redis)

    assert not isinstance(caught.value, aioredis.RedisError)
    assert isinstance(caught.value.__cause__, aioredis.RedisError)


async def test_concurrent_requests_of_a_cold_session_share_one_database_load(
    client: httpx.AsyncClient, queries: QueryCounter
) -> None:
    await register(client, EMAIL)
    auth = bearer(await login(client, EMAIL))
    queries.statements.clear()

    responses = await asyncio.gather(*(client.get(ME, headers=auth) for _ in range(20)))

    assert {r.status_code for r in responses} == {200}
    assert queries.count == COLD, queries.statements


# --- browser sessions (the hosted pages' cookie) -------------------------------------------


async def _signed_in_browser(app: Any, stack: AsyncExitStack) -> httpx.AsyncClient:
    """A browser-like client of ``app`` (HTTPS, so the ``__Host-`` cookie is kept) signed
    in on the hosted /login page."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 52000))
    browser = await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url="https://atrium.test")
    )
    await browser_sign_in(browser, EMAIL)
    return browser


@pytest.mark.skipif(not REDIS_URL, reason="set ATRIUM_TEST_REDIS_URL to test a shared Redis cache")
async def test_browser_session_revoked_on_one_node_is_refused_at_once_on_another_sharing_redis(
    settings: Settings, serve: Callable[..., Awaitable[Started]]
) -> None:
    if not settings.redis.url:
        pytest.skip("this backend uses the in-process cache; Redis is configured for postgresql")
    _, node_a = await serve()
    app_b, _ = await serve()
    await register(node_a, EMAIL)
    async with AsyncExitStack() as stack:
        page_b = await _signed_in_browser(app_b, stack)
        assert (await page_b.get("/account")).status_code == 200  # warms B's cache
        with count_statements(app_b.state.ctx.engine) as counter:
            assert (await page_b.get("/account")).status_code == 200
        assert not any("refresh_token" in s for s in counter.statements)  # from the cache

        auth = bearer(await login(node_a, EMAIL))
        sessions = (await node_a.get(f"{ME}/sessions", headers=auth)).json()
        (cookie_session,) = [s for s in sessions if s["user_agent"] != "pytest"]
        revoked = await node_a.delete(f"{ME}/sessions/{cookie_session['id']}", headers=auth)
        assert revoked.status_code == 204
        response = await page_b.get("/account")

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


async def test_browser_session_revoked_on_another_worker_is_refused_within_the_cache_lifetime(
    settings: Settings,
    fake_monotonic: FakeMonotonic,
    serve: Callable[..., Awaitable[Started]],
) -> None:
    app_a, worker_a = await serve()
    app_b, _ = await serve()
    await register(worker_a, EMAIL)
    async with AsyncExitStack() as stack:
        page_a = await _signed_in_browser(app_a, stack)
        assert (await page_a.get("/account")).status_code == 200  # cached on A
        page_b = await _signed_in_browser(app_b, stack)
        page_b.cookies.set(COOKIE, page_a.cookies[COOKIE], domain="atrium.test")
        signed_out = await browser_post_form(page_b, "/account", "/logout", {})
        assert signed_out.headers["location"] == "/login?done=logged_out"

        fake_monotonic.advance(settings.auth.principal_cache_ttl_seconds + 0.1)
        response = await page_a.get("/account")

    assert response.status_code == 303
