"""A database as the previous release left it: migrated to the revision before the current
head and filled with accounts and role grants through that revision's own schema (tables
reflected from the database, not today's models). Used by tests/test_upgrade.py and, with
``ATRIUM_TEST_UPGRADE_FROM``, by the whole API suite (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from alembic.script import ScriptDirectory
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import JSON, Boolean, DateTime, Integer, MetaData, String, Text, insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.rbac.permissions import BUILTIN_ROLE_IDS

ACCOUNTS = {
    "old-ada@example.com": "a passphrase from the last release",
    "old-grace@example.com": "another passphrase from before",
}


def previous_head(database_url: str) -> str:
    """The revision the current head upgrades from (the previous release's head)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(database_url))
    head = script.get_revision("head")
    assert head is not None
    down = head.down_revision
    assert isinstance(down, str), f"head {head.revision} has no single previous revision"
    return down


def _filler(column: Any) -> Any:
    """A value for a NOT NULL column this seed does not know (added by a later revision of
    the previous release): the type's neutral value."""
    kind = column.type
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 0
    if isinstance(kind, DateTime):
        return datetime.now(UTC)
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, String | Text):
        return ""
    raise AssertionError(f"tests/upgrade_seed.py: give {column.table.name}.{column.name} a value")


def _row(table: Any, known: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in known.items() if k in table.c}
    for column in table.c:
        needs_value = not column.nullable and column.server_default is None
        if column.name not in row and needs_value and column.autoincrement is not True:
            row[column.name] = _filler(column)
    return row


def seed_previous_release(database_url: str, revision: str | None = None) -> dict[str, str]:
    """Migrate an empty database to ``revision`` (default: the previous head) and add
    ``ACCOUNTS`` with the built-in ``user`` role; returns email -> password."""
    migrate.upgrade(database_url, revision or previous_head(database_url))
    hasher = PasswordHash((Argon2Hasher(memory_cost=1024, time_cost=1),))
    now = datetime.now(UTC)

    def work(conn: Connection) -> None:
        meta = MetaData()
        meta.reflect(conn, only=["user_account", "user_role"])
        accounts, grants = meta.tables["user_account"], meta.tables["user_role"]
        for email, password in ACCOUNTS.items():
            user_id = uuid.uuid4()
            known = {
                "id": user_id,
                "email": email,
                "email_normalized": email,
                "password_hash": hasher.hash(password),
                "status": "active",
                "email_verified_at": now,
                "created_at": now,
                "updated_at": now,
                "locale": "en",
            }
            conn.execute(insert(accounts).values(_row(accounts, known)))
            grant = {
                "user_id": user_id,
                "role_id": BUILTIN_ROLE_IDS["user"],
                "granted_at": now,
                "user_created_at": now,
                "user_email_normalized": email,
            }
            conn.execute(insert(grants).values(_row(grants, grant)))

    async def run() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(work)
        finally:
            await engine.dispose()

    asyncio.run(run())
    return dict(ACCOUNTS)
