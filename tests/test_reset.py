"""The PostgreSQL reset between tests (``tests.conftest.reset_database``) leaves what a
freshly migrated database has: no rows but the built-in roles, exactly as the migrations
create them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from atrium.context import AppContext
from tests.conftest import FRESH_MIGRATION, PG_URL, UPGRADE_FROM, reset_database, seeded_rows
from tests.factories import signed_in_as

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs ATRIUM_TEST_DATABASE_URL")


def _without_timestamps(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """The rows without the moment of the migration that wrote them, in a stable order."""
    return {
        table: sorted(
            tuple(sorted((k, v) for k, v in row.items() if k not in {"created_at", "updated_at"}))
            for row in found
        )
        for table, found in rows.items()
    }


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_reset_leaves_only_the_rows_the_migrations_seed(
    client: Any, ctx: AppContext, pg_database: str
) -> None:
    # A test's leftovers: accounts, a session, a role given, a role changed.
    await signed_in_as(client, ctx, "ada@example.com", "moderator")
    async with ctx.engine.begin() as conn:
        await conn.execute(text("DELETE FROM role_permission WHERE permission = 'users:read'"))

    await reset_database(ctx.engine)

    # Every table but the seeded ones is empty, and those hold what the migrations wrote
    # into this database before the first test (timestamps included).
    after = await seeded_rows(pg_database)
    assert after == FRESH_MIGRATION["rows"]
    assert set(after) == {"role", "role_parent", "role_permission"}


@pytest.mark.skipif(bool(UPGRADE_FROM), reason="the database was upgraded with data")
def test_both_backends_migrate_to_the_same_seeded_rows(
    sqlite_template: Path, pg_database: str
) -> None:
    sqlite = asyncio.run(seeded_rows(f"sqlite+aiosqlite:///{sqlite_template}"))

    assert _without_timestamps(FRESH_MIGRATION["rows"]) == _without_timestamps(sqlite)
    assert FRESH_MIGRATION["rows"]["role"], "the migrations seed the built-in roles"
