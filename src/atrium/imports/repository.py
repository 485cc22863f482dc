"""Every query of an import: a staging table per run, checks against the accounts, merge.

The valid records are written to a temporary table (PostgreSQL: ``COPY`` through asyncpg's
``copy_records_to_table``; SQLite: multi-row inserts), checked as a set (duplicates in the
file, handles owned by other accounts, deleted accounts), then merged with three
statements (``UPDATE … FROM``, ``INSERT … SELECT``, and the role grants and profiles with
``ON CONFLICT``) inside the one transaction of the import: all or nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TextClause,
    Uuid,
    bindparam,
    insert,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, CreateTable

from atrium.imports.validate import StageRow
from atrium.models.base import UTCDateTime
from atrium.models.role import BUILTIN_ROLE_IDS, USER

_meta = MetaData()
STAGE = Table(
    "import_stage",
    _meta,
    Column("record", Integer, primary_key=True),
    Column("line", Integer),
    Column("id", Uuid),
    Column("email", String(320)),
    Column("email_key", String(320)),
    Column("password_hash", String(255)),
    Column("full_name", String(200)),
    Column("username", String(64)),
    Column("email_verified", Boolean),
    Column("status", String(20)),
    Column("locale", String(35)),
    Column("created_at", UTCDateTime()),
    Column("has_profile", Boolean),
    Column("display_name", String(100)),
    Column("bio", String(500)),
    Column("location", String(100)),
    Column("website", String(2048)),
    Column("pronouns", String(40)),
    Column("timezone", String(64)),
    Index("ix_import_stage_email_key", "email_key"),
    Index("ix_import_stage_username", "username"),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGE_ROLE = Table(
    "import_stage_role",
    _meta,
    Column("email_key", String(320)),
    Column("role_name", String(64)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGE_COLUMNS = tuple(c.name for c in STAGE.columns)
# A StageRow's fields are the table's columns in order, then ``roles``.
_ROLE_INDEX = len(STAGE_COLUMNS)

# Each check answers (record, line, field, message) of the records it refuses.
CHECKS: tuple[tuple[str, str], ...] = (
    (
        "email",
        """SELECT s.record, s.line, 'email', 'the same email as record ' || d.first
             FROM import_stage s
             JOIN (SELECT email_key, MIN(record) AS first FROM import_stage
                    GROUP BY email_key HAVING COUNT(*) > 1) d ON d.email_key = s.email_key
            WHERE s.record > d.first""",
    ),
    (
        "username",
        """SELECT s.record, s.line, 'username', 'the same username as record ' || d.first
             FROM import_stage s
             JOIN (SELECT username, MIN(record) AS first FROM import_stage
                    WHERE username IS NOT NULL
                    GROUP BY username HAVING COUNT(*) > 1) d ON d.username = s.username
            WHERE s.record > d.first""",
    ),
    (
        "username_taken",
        """SELECT s.record, s.line, 'username', 'the username belongs to another account'
             FROM import_stage s JOIN user_account u ON u.username = s.username
            WHERE u.email_normalized <> s.email_key""",
    ),
    (
        "deleted",
        """SELECT s.record, s.line, 'email',
                  'the account of this email is deleted: restore or purge it first'
             FROM import_stage s JOIN user_account u ON u.email_normalized = s.email_key
            WHERE u.deleted_at IS NOT NULL""",
    ),
)

# Absent fields keep the stored value; the status of an existing account is not changed
# by an import (suspending one is an admin action that also revokes its sessions).
_UPDATE = """
UPDATE user_account SET
    email = s.email,
    password_hash = COALESCE(s.password_hash, user_account.password_hash),
    full_name = COALESCE(s.full_name, user_account.full_name),
    username = COALESCE(s.username, user_account.username),
    locale = COALESCE(s.locale, user_account.locale),
    email_verified_at = CASE
        WHEN s.email_verified IS NULL THEN user_account.email_verified_at
        WHEN s.email_verified THEN COALESCE(user_account.email_verified_at, :now)
        ELSE NULL END,
    updated_at = :now
FROM import_stage s
WHERE user_account.email_normalized = s.email_key
"""
# A cached public profile holds the username and the profile fields: of what the merge
# changes, only a new username or a record's profile fields make it stale.
_UPDATED_USERNAMES = """
SELECT u.username FROM user_account u JOIN import_stage s ON u.email_normalized = s.email_key
WHERE u.username IS NOT NULL
  AND (s.has_profile OR (s.username IS NOT NULL AND s.username <> u.username))
"""
# An account without a password hash gets '!', which no hasher recognises: it signs in
# after a password reset (or another method), never with a password.
_INSERT = """
INSERT INTO user_account (id, email, email_normalized, password_hash, full_name, status,
    username, profile_verified, email_verified_at, created_at, updated_at, last_login_at,
    locale, deleted_at)
SELECT s.id, s.email, s.email_key, COALESCE(s.password_hash, '!'), s.full_name,
    COALESCE(s.status, 'active'), s.username, FALSE,
    CASE WHEN s.email_verified THEN COALESCE(s.created_at, :now) END,
    COALESCE(s.created_at, :now), :now, NULL, s.locale, NULL
FROM import_stage s
WHERE NOT EXISTS (SELECT 1 FROM user_account u WHERE u.email_normalized = s.email_key)
"""
_GRANT_DEFAULT = """
INSERT INTO user_role (user_id, role_id, granted_at, granted_by,
    user_created_at, user_email_normalized, user_last_login_at)
SELECT u.id, :user_role, :now, :actor, u.created_at, u.email_normalized, u.last_login_at
FROM import_stage s JOIN user_account u ON u.email_normalized = s.email_key
WHERE TRUE
ON CONFLICT (user_id, role_id) DO NOTHING
"""
_GRANT_LISTED = """
INSERT INTO user_role (user_id, role_id, granted_at, granted_by,
    user_created_at, user_email_normalized, user_last_login_at)
SELECT DISTINCT u.id, r.id, :now, :actor, u.created_at, u.email_normalized, u.last_login_at
FROM import_stage_role sr
JOIN user_account u ON u.email_normalized = sr.email_key
JOIN role r ON r.name = sr.role_name
WHERE TRUE
ON CONFLICT (user_id, role_id) DO NOTHING
"""
_PROFILE = """
INSERT INTO user_profile (user_id, display_name, bio, location, website, pronouns, locale,
    timezone, visibility, location_visibility, website_visibility, pronouns_visibility,
    avatar_version, updated_at)
SELECT u.id, s.display_name, s.bio, s.location, s.website, s.pronouns, NULL, s.timezone,
    'public', 'public', 'public', 'public', NULL, :now
FROM import_stage s JOIN user_account u ON u.email_normalized = s.email_key
WHERE s.has_profile
ON CONFLICT (user_id) DO UPDATE SET
    display_name = COALESCE(excluded.display_name, user_profile.display_name),
    bio = COALESCE(excluded.bio, user_profile.bio),
    location = COALESCE(excluded.location, user_profile.location),
    website = COALESCE(excluded.website, user_profile.website),
    pronouns = COALESCE(excluded.pronouns, user_profile.pronouns),
    timezone = COALESCE(excluded.timezone, user_profile.timezone),
    updated_at = excluded.updated_at
"""


def _sql(statement: str, now: datetime, **ids: uuid.UUID | None) -> TextClause:
    params: list[Any] = [bindparam("now", now, type_=UTCDateTime())]
    params += [bindparam(name, value, type_=Uuid()) for name, value in ids.items()]
    return text(statement).bindparams(*params)


class ImportRepository:
    """The staging table and the merge, on one connection inside its transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.postgresql = conn.dialect.name == "postgresql"

    async def prepare(self) -> None:
        """Create the staging tables (PostgreSQL: dropped at commit; lifted bounds for a
        long transaction)."""
        if self.postgresql:
            await self.conn.execute(text("SET LOCAL statement_timeout = 0"))
            await self.conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        else:
            await self.drop()
        await self.conn.execute(CreateTable(STAGE))
        await self.conn.execute(CreateTable(STAGE_ROLE))

    async def drop(self) -> None:
        """SQLite only: drop the staging tables (PostgreSQL drops them at commit)."""
        if not self.postgresql:
            await self.conn.execute(text("DROP TABLE IF EXISTS temp.import_stage"))
            await self.conn.execute(text("DROP TABLE IF EXISTS temp.import_stage_role"))

    async def role_names(self) -> frozenset[str]:
        rows = await self.conn.execute(text("SELECT name FROM role"))
        return frozenset(r[0] for r in rows)

    async def stage(self, rows: Sequence[StageRow]) -> None:
        """Write a batch of valid records (and their listed roles) to the staging tables."""
        if not rows:
            return
        staged = [r[:_ROLE_INDEX] for r in rows]
        roles = [(r.email_key, name) for r in rows for name in r.roles]
        if self.postgresql:
            raw = await self.conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.copy_records_to_table(
                "import_stage", records=staged, columns=STAGE_COLUMNS
            )
            if roles:
                await driver.copy_records_to_table(
                    "import_stage_role", records=roles, columns=("email_key", "role_name")
                )
            return
        await self.conn.execute(
            insert(STAGE), [dict(zip(STAGE_COLUMNS, r, strict=True)) for r in staged]
        )
        if roles:
            await self.conn.execute(
                insert(STAGE_ROLE), [{"email_key": k, "role_name": n} for k, n in roles]
            )

    async def index(self) -> None:
        """Index the loaded staging table for the checks and the merge."""
        for index in STAGE.indexes:
            await self.conn.execute(CreateIndex(index))
        if self.postgresql:
            await self.conn.execute(text("ANALYZE import_stage"))

    async def conflicts(self, limit: int) -> tuple[int, list[tuple[int, int | None, str, str]]]:
        """(how many records the set checks refuse, the first ``limit`` of them)."""
        total = 0
        found: list[tuple[int, int | None, str, str]] = []
        for _name, query in CHECKS:
            # The checks are constant text of this module; ``limit`` an integer.
            count = text(f"SELECT count(*) FROM ({query}) c")  # noqa: S608  # nosec B608 - constant text of this module
            total += int((await self.conn.execute(count)).scalar_one())
            if len(found) < limit:
                rows = await self.conn.execute(
                    text(f"{query} ORDER BY 1 LIMIT {int(limit) - len(found)}")
                )
                found += [(int(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]
        found.sort()
        return total, found

    async def updated_usernames(self) -> list[str]:
        """The usernames, as they are before the merge, of the existing accounts whose
        public profile the staged records change (a new username or profile fields):
        their cached public profiles go once the import has committed."""
        rows = await self.conn.execute(text(_UPDATED_USERNAMES))
        return [r[0] for r in rows]

    async def merge(self, now: datetime, actor_id: uuid.UUID | None) -> tuple[int, int]:
        """Apply the staged records; answers (created, updated)."""
        updated = (await self.conn.execute(_sql(_UPDATE, now))).rowcount
        created = (await self.conn.execute(_sql(_INSERT, now))).rowcount
        who = {"actor": actor_id}
        await self.conn.execute(_sql(_GRANT_DEFAULT, now, user_role=BUILTIN_ROLE_IDS[USER], **who))
        await self.conn.execute(_sql(_GRANT_LISTED, now, **who))
        await self.conn.execute(_sql(_PROFILE, now))
        return created, updated
