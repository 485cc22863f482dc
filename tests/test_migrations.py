"""The migrations build the schema the models describe, and undo it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.migrations.env_helpers import include_object
from atrium.models import Base
from tests.conftest import PG_URL

TABLES = {
    "user_account",
    "auth_session",
    "refresh_token",
    "role",
    "role_permission",
    "role_parent",
    "user_role",
    "audit_event",
}


def _pg_scratch_url() -> Iterator[str]:
    assert PG_URL is not None
    name = f"atrium_mig_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if PG_URL is None:
        pytest.skip("ATRIUM_TEST_DATABASE_URL is not set")
    yield from _pg_scratch_url()


def _inspect(url: str) -> tuple[set[str], list[object]]:
    def work(conn: Connection) -> tuple[set[str], list[object]]:
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
        return tables, diff

    async def run() -> tuple[set[str], list[object]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_creates_the_schema_of_the_models(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    tables, diff = _inspect(empty_database)
    assert tables == TABLES
    assert diff == []


def test_downgrade_returns_to_an_empty_database(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.downgrade(empty_database, "base")
    tables, _ = _inspect(empty_database)
    assert tables == set()


def test_upgrade_is_idempotent(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.upgrade(empty_database)
    tables, _ = _inspect(empty_database)
    assert tables == TABLES
