"""The PostgreSQL reset between tests (``tests.conftest.reset_database``) leaves what a
freshly migrated database has: no rows but the built-in roles, exactly as the migrations
create them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from atrium.context import AppContext
from atrium.models import Base, Role, RoleParent, RolePermission
from tests.conftest import PG_URL, reset_database
from tests.factories import signed_in_as

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs ATRIUM_TEST_DATABASE_URL")

# Through the models, so that both backends give the same Python values (a UUID is a
# string of 32 hex digits on SQLite).
SEEDED: dict[str, Any] = {
    Role.__tablename__: select(
        Role.id, Role.name, Role.description, Role.is_builtin, Role.mfa_required
    ),
    RolePermission.__tablename__: select(RolePermission.role_id, RolePermission.permission),
    RoleParent.__tablename__: select(RoleParent.role_id, RoleParent.parent_id),
}


async def _contents(url: str) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            seeded = {
                name: sorted(tuple(row) for row in await conn.execute(query))
                for name, query in SEEDED.items()
            }
            counts = {
                table.name: (
                    await conn.execute(text(f'SELECT count(*) FROM "{table.name}"'))
                ).scalar()
                for table in Base.metadata.sorted_tables
                if table.name not in SEEDED
            }
    finally:
        await engine.dispose()
    return {"seeded": seeded, "counts": counts}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_reset_leaves_only_the_rows_the_migrations_seed(
    client: Any, ctx: AppContext, sqlite_template: Path, pg_database: str
) -> None:
    # A test's leftovers: accounts, a session, a role given, a role changed.
    await signed_in_as(client, ctx, "ada@example.com", "moderator")
    async with ctx.engine.begin() as conn:
        await conn.execute(text("DELETE FROM role_permission WHERE permission = 'users:read'"))

    await reset_database(ctx.engine)

    after = await _contents(pg_database)
    fresh = await _contents(f"sqlite+aiosqlite:///{sqlite_template}")
    assert after["seeded"] == fresh["seeded"]
    assert fresh["seeded"]["role"], "the migrations seed the built-in roles"
    assert set(after["counts"].values()) == {0}
