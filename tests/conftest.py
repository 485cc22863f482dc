"""Shared fixtures: a migrated database per test, the app with a movable clock, a client.

Backends: every API test runs on the embedded default (SQLite file, in-process cache) and,
when ``ATRIUM_TEST_DATABASE_URL`` is set, again on PostgreSQL (with Redis as the cache when
``ATRIUM_TEST_REDIS_URL`` is set too). PostgreSQL tests get a database of their own,
created for the run and dropped after it; each test starts from empty tables.

Parallel runs (pytest-xdist, ``make test`` uses ``-n auto``): session fixtures are per
worker, so each worker migrates its own SQLite template and its own PostgreSQL database
(named after the worker), and every PostgreSQL test has a Redis key prefix of its own.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, make_url, select, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.config import (
    ActivitySettings,
    AuthSettings,
    DatabaseSettings,
    Environment,
    EventSettings,
    MailSettings,
    MfaSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
)
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from atrium.models import Base
from tests import compile_cache, route_cache

# Each test builds its own app; FastAPI's build of each included route is shared by them
# (tests/route_cache.py).
route_cache.install()
# ... and so is SQLAlchemy's compilation of each statement (tests/compile_cache.py).
compile_cache.install()

PG_URL = os.environ.get("ATRIUM_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("ATRIUM_TEST_REDIS_URL")
# "previous" (or a revision id): PostgreSQL tests run on a database seeded at that revision
# and then upgraded, instead of a fresh one.
UPGRADE_FROM = os.environ.get("ATRIUM_TEST_UPGRADE_FROM")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

# Fast hashing parameters for tests; the OWASP defaults are checked in test_passwords.
FAST_ARGON2 = {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the test files that start real processes (marked ``e2e``: a server, a browser, a
    copy of the checkout; seconds each, a minute for some files) first.

    ``make test`` hands whole files to the xdist workers (``--dist loadfile``, so a file's
    module-scoped server or browser starts once) in collection order
    (``--no-loadscope-reorder``): the longest files start first and the short API test
    files fill in around them, instead of one long file starting last and running alone.
    The sort is stable: every other test keeps its place."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection loaded (the modules, the test items) out of the collector's
    generations, as the server does after start-up (``atrium.main.freeze_startup_objects``):
    each full collection of a test process then scans only what the tests create, not the
    ~300,000 objects of the loaded code again.

    Then collect the youngest generation every 50,000 net allocations instead of 700: a
    test allocates far more than that and frees most of it by reference counting, so the
    default ran ~4,000 young collections per worker for the auth, admin, profiles and users
    tests (1,162 tests, 2 workers); what is left in cycles (a finished application) is
    still collected, less often. Garbage-collector time on those tests: 5.1 s → 2.2 s."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


@dataclass
class Database:
    backend: str
    url: str


def _worker() -> str:
    """The xdist worker's id (``gw0``, ``gw1``, ...), ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file of this worker, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "atrium.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _run_on_server(sql: str) -> None:
    """Run one statement on the PostgreSQL server of ATRIUM_TEST_DATABASE_URL (autocommit)."""
    assert PG_URL is not None

    async def run() -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def pg_database(sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run and worker; dropped afterwards."""
    assert PG_URL is not None
    name = f"atrium_test_{_worker()}_{uuid.uuid4().hex[:10]}"
    _run_on_server(f'CREATE DATABASE "{name}"')
    # A test database is thrown away: commits need not wait for the WAL to reach the disk.
    _run_on_server(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    if UPGRADE_FROM:
        # The suite runs on a database the previous release left, upgraded (docs/migrations.md).
        from tests.upgrade_seed import seed_previous_release

        seed_previous_release(url, None if UPGRADE_FROM == "previous" else UPGRADE_FROM)
    migrate.upgrade(url)
    # What the migrations seed, for the reset after each test: read from this database
    # while it is fresh, or, upgraded with the previous release's data, from the worker's
    # freshly migrated SQLite template.
    source = f"sqlite+aiosqlite:///{sqlite_template}" if UPGRADE_FROM else url
    FRESH_MIGRATION["rows"] = asyncio.run(seeded_rows(source))
    FRESH_MIGRATION["script"] = _reset_script(FRESH_MIGRATION["rows"])
    if UPGRADE_FROM:
        # Upgraded with data; each test still starts from empty tables.
        asyncio.run(_reset(url))
    yield url
    _run_on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _reset(url: str) -> None:
    engine = create_async_engine(url)
    try:
        await reset_database(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "atrium.db"
        shutil.copy(template, path)
        return Database("sqlite", f"sqlite+aiosqlite:///{path}")
    return Database("postgresql", request.getfixturevalue("pg_database"))


def _test_settings() -> Settings:
    """The settings every API test starts from (the database, data directory and Redis are
    the test's own, set by the ``settings`` fixture)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=Path("var"),
        # The production time-outs (5 s) are tested in tests/faults with their own
        # settings; here a CI machine under load must not turn a slow query into a 503.
        database=DatabaseSettings(
            url="sqlite+aiosqlite:///atrium.db",
            auto_migrate=False,
            pool_timeout_seconds=30,
            connect_timeout_seconds=30,
            command_timeout_seconds=30,
            statement_timeout_seconds=25,
        ),
        auth=AuthSettings(**FAST_ARGON2, hash_concurrency=4),
        # Per-IP route limits and login throttling are exercised by
        # tests/core/test_ratelimit.py and tests/auth/test_bruteforce.py; elsewhere they are
        # out of the way, while the per-account email limits keep their defaults.
        rate_limit=RateLimitSettings(
            registration="100000/minute",
            login="100000/minute",
            refresh="100000/minute",
            login_failures_per_account=100000,
            login_failures_per_ip=100000,
        ),
        # MFA required by role is exercised by tests/mfa/test_role_requirement.py; elsewhere
        # the built-in admin roles would need a second factor after the grace period.
        mfa=MfaSettings(role_requirement_enabled=False),
        # Tests drive the delivery worker themselves (tests/mail/).
        mail=MailSettings(worker_in_api=False, from_address="Atrium <no-reply@atrium.test>"),
        # ... and the event dispatcher (tests/events/).
        events=EventSettings(worker_in_api=False),
        # Thousands of apps start in one test process: freezing would keep each one's
        # objects for good (tests/test_main.py checks the default).
        gc_freeze=False,
        # Tests flush the activity buffer themselves (tests/activity/).
        activity=ActivitySettings(flush_interval_seconds=3600),
    )


# Read once per test process (~2 ms, the environment included); each test gets a deep copy
# (~0.2 ms), which it may change in place.
_TEST_SETTINGS = _test_settings()


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    settings = _TEST_SETTINGS.model_copy(deep=True)
    settings.data_dir = tmp_path / "var"
    settings.database.url = database.url
    if database.backend == "postgresql" and REDIS_URL:
        settings.redis = RedisSettings(
            url=REDIS_URL, key_prefix=f"atrium-test:{_worker()}:{uuid.uuid4().hex}:"
        )
    return settings


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def app_ctx(settings: Settings, clock: FrozenClock, database: Database) -> AsyncIterator[Any]:
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        yield app
        ctx: AppContext = app.state.ctx
        # What the test left in the activity buffer must not be flushed into the next
        # test's database at shutdown.
        ctx.activity.drain(clock.now().date())
        if database.backend == "postgresql":
            await reset_database(ctx.engine)


async def reset_database(engine: Any) -> None:
    """Empty every table of the shared PostgreSQL test database and put back what the
    migrations seed (the built-in roles), so the next test starts from a fresh install.

    One script (``_reset_script``), one round trip, one transaction: ``DELETE`` from the
    child tables first, then the rows a fresh migration of this database left. On tables
    holding a test's few rows ``DELETE`` is far cheaper than ``TRUNCATE``, which gives every
    table new files (measured at ~170 ms a test)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        async with driver.transaction():
            await driver.execute(FRESH_MIGRATION["script"])


async def seeded_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of every table of the database at ``url`` that has any, by table name,
    parents first (read through the models, so that both backends give the same Python
    values)."""
    engine = create_async_engine(url)
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                found = [dict(row) for row in (await conn.execute(select(table))).mappings()]
                if found:
                    rows[table.name] = found
    finally:
        await engine.dispose()
    return rows


def _reset_script(seeded: dict[str, list[dict[str, Any]]]) -> str:
    """The ``DELETE`` of every table, children first, then the ``INSERT`` of ``seeded``
    (what a fresh migration leaves: the built-in roles, their permissions and parents),
    rendered for asyncpg, which runs the script as it is: one SQL script."""
    tables = Base.metadata.sorted_tables
    script = "".join(f'DELETE FROM "{t.name}";' for t in reversed(tables))
    for table in tables:
        if table.name in seeded:
            insert = table.insert().values(seeded[table.name])
            compiled = insert.compile(
                dialect=asyncpg_dialect(), compile_kwargs={"literal_binds": True}
            )
            script += f"{compiled};"
    return script


# Filled by ``pg_database``, once per test process: the rows a fresh migration leaves
# (``rows``) and the reset script (``script``); sorting the tables and rendering the rows
# for each test cost more than running the script.
FRESH_MIGRATION: dict[str, Any] = {}


@pytest.fixture
def app(app_ctx: Any) -> Any:
    return app_ctx


@pytest.fixture
def ctx(app: Any) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        yield c


# /openapi.json as first fetched in this test process, by what it depends on.
_OPENAPI_DOCUMENTS: dict[str, dict[str, Any]] = {}


@pytest.fixture
async def openapi_spec(client: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    """The app's ``/openapi.json``, fetched once per test process and set of settings.

    Generating it takes ~0.7 s; it depends on the routes and the settings, never on the
    test's database, files or cache, which are left out of the key. Each test gets its own
    copy."""
    key = settings.model_dump_json(exclude={"database", "data_dir", "redis"})
    if key not in _OPENAPI_DOCUMENTS:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        _OPENAPI_DOCUMENTS[key] = response.json()
    return copy.deepcopy(_OPENAPI_DOCUMENTS[key])


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def queries(ctx: AppContext) -> Iterator[QueryCounter]:
    """Counts SQL statements sent through the app's engine (all sessions)."""
    counter = QueryCounter()

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            counter.statements.append(statement)

    sync_engine = ctx.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", before)
    yield counter
    event.remove(sync_engine, "before_cursor_execute", before)


# --- object storage: a real S3-API server (moto in server mode) --------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free local port for the whole run; its endpoint URL."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_settings(endpoint: str, **overrides: Any) -> Any:
    """Storage settings for a new, empty bucket on the moto server at ``endpoint``."""
    from atrium.config import StorageSettings
    from atrium.core.storage import boto3_session

    bucket = f"atrium-test-{uuid.uuid4().hex[:12]}"
    client = boto3_session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    client.close()
    return StorageSettings(
        backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=bucket,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        s3_path_style=True,
        **overrides,
    )


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    """Parametrises a test module over both storage backends (use with ``settings``)."""
    backend: str = request.param
    return backend
