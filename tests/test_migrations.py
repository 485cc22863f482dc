"""The migrations build the schema the models describe, and undo it."""

from __future__ import annotations

import asyncio
import json
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
    "data_export",
    "auth_session",
    "refresh_token",
    "outbox_message",
    "email_token",
    "role",
    "role_permission",
    "role_parent",
    "user_role",
    "audit_event",
    "user_profile",
    "user_preferences",
    "stored_file",
    "mfa_factor",
    "mfa_recovery_code",
    "mfa_challenge",
    "trusted_device",
    "event",
    "event_delivery",
    "notification",
    "notification_broadcast",
    "job_run",
    "api_key",
    "passkey",
    "webauthn_challenge",
    "identity_provider",
    "user_identity",
    "oauth_ticket",
    "user_import",
    "webhook_endpoint",
    "webhook_delivery",
    "webhook_attempt",
    "user_activity_day",
    "login_day",
    "analytics_day",
    "session_device_day",
    "retention_cohort",
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


def _execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` in one transaction; the rows of the last one (if any)."""

    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = None
                for sql in statements:
                    result = await conn.execute(text(sql))
                return (
                    [tuple(r) for r in result] if result is not None and result.returns_rows else []
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_is_superuser_becomes_the_superadmin_role_and_back(empty_database: str) -> None:
    migrate.upgrade(empty_database, "0001")
    columns = (
        "id, email, email_normalized, password_hash, status, is_superuser, created_at, updated_at"
    )
    root, plain = uuid.uuid4(), uuid.uuid4()
    is_pg = empty_database.startswith("postgresql")
    as_id = (lambda u: f"'{u}'") if is_pg else (lambda u: f"'{u.hex}'")
    now = "'2026-01-01 00:00:00+00:00'"
    _execute(
        empty_database,
        f"INSERT INTO user_account ({columns}) VALUES "
        f"({as_id(root)}, 'r@x.io', 'r@x.io', 'h', 'active', true, {now}, {now}), "
        f"({as_id(plain)}, 'p@x.io', 'p@x.io', 'h', 'active', false, {now}, {now})",
    )

    migrate.upgrade(empty_database)

    grants = _execute(
        empty_database,
        "SELECT u.email, r.name FROM user_role ur JOIN role r ON r.id = ur.role_id "
        "JOIN user_account u ON u.id = ur.user_id ORDER BY u.email, r.name",
    )
    assert grants == [("p@x.io", "user"), ("r@x.io", "superadmin"), ("r@x.io", "user")]

    migrate.downgrade(empty_database, "0001")

    flags = _execute(empty_database, "SELECT email, is_superuser FROM user_account ORDER BY email")
    assert [(e, bool(f)) for e, f in flags] == [("p@x.io", False), ("r@x.io", True)]


def test_role_holder_sort_keys_are_backfilled_then_kept_by_the_trigger(
    empty_database: str,
) -> None:
    """0005 copies each account's email and last login into its user_role rows, and a
    trigger keeps the copies equal on every later UPDATE of the account."""
    migrate.upgrade(empty_database, "0004")
    is_pg = empty_database.startswith("postgresql")
    as_id = (lambda u: f"'{u}'") if is_pg else (lambda u: f"'{u.hex}'")
    uid = uuid.uuid4()
    user_role_id = "00000000-0000-4000-8000-000000000001"
    role = as_id(uuid.UUID(user_role_id))
    now = "'2026-01-01 00:00:00+00:00'"
    columns = "id, email, email_normalized, password_hash, status, created_at, updated_at"
    _execute(
        empty_database,
        f"INSERT INTO user_account ({columns}, last_login_at) VALUES "
        f"({as_id(uid)}, 'A@x.io', 'a@x.io', 'h', 'active', {now}, {now}, {now})",
        "INSERT INTO user_role (user_id, role_id, granted_at, user_created_at) VALUES "
        f"({as_id(uid)}, {role}, {now}, {now})",
    )
    copies = (
        "SELECT ur.user_email_normalized, ur.user_last_login_at IS NULL "
        f"FROM user_role ur WHERE ur.user_id = {as_id(uid)}"
    )

    migrate.upgrade(empty_database)

    assert _execute(empty_database, copies) == [("a@x.io", False)]
    assert _execute(
        empty_database,
        "UPDATE user_account SET email_normalized = 'b@x.io', last_login_at = NULL "
        f"WHERE id = {as_id(uid)}",
        copies,
    ) == [("b@x.io", True)]

    if is_pg:
        # A grant inserted without the copies (the previous release, mid-rollout) gets them.
        moderator = as_id(uuid.UUID("00000000-0000-4000-8000-000000000002"))
        assert _execute(
            empty_database,
            f"UPDATE user_account SET last_login_at = {now} WHERE id = {as_id(uid)}",
            "INSERT INTO user_role (user_id, role_id, granted_at, user_created_at) VALUES "
            f"({as_id(uid)}, {moderator}, {now}, {now})",
            "SELECT user_email_normalized, user_last_login_at = timestamptz "
            f"{now} FROM user_role WHERE role_id = {moderator}",
        ) == [("b@x.io", True)]

    migrate.downgrade(empty_database, "0004")

    # Without the trigger (and its columns) an account update still works.
    assert _execute(
        empty_database,
        f"UPDATE user_account SET email_normalized = 'c@x.io' WHERE id = {as_id(uid)}",
        f"SELECT email_normalized FROM user_account WHERE id = {as_id(uid)}",
    ) == [("c@x.io",)]


def test_mfa_revision_keeps_sessions_as_aal1_password_sessions(empty_database: str) -> None:
    """0006 (after 0010): an existing session becomes aal1 ``["pwd"]``, authenticated at its
    creation; admin and superadmin require MFA; admin gets ``users:mfa_reset``; and back."""
    migrate.upgrade(empty_database, "0010")
    is_pg = empty_database.startswith("postgresql")
    as_id = (lambda u: f"'{u}'") if is_pg else (lambda u: f"'{u.hex}'")
    user, session = uuid.uuid4(), uuid.uuid4()
    created = "'2026-01-01 10:00:00+00:00'" if is_pg else "'2026-01-01 10:00:00.000000'"
    _execute(
        empty_database,
        "INSERT INTO user_account (id, email, email_normalized, password_hash, status, "
        "profile_verified, created_at, updated_at) VALUES "
        f"({as_id(user)}, 'a@x.io', 'a@x.io', 'h', 'active', false, {created}, {created})",
        "INSERT INTO auth_session (id, user_id, created_at, last_used_at, expires_at) VALUES "
        f"({as_id(session)}, {as_id(user)}, {created}, {created}, {created})",
    )

    migrate.upgrade(empty_database, "0006")

    [(aal, amr, auth_time)] = _execute(
        empty_database, "SELECT aal, amr, auth_time FROM auth_session"
    )
    assert aal == 1
    assert (amr if isinstance(amr, list) else json.loads(str(amr))) == ["pwd"]
    assert str(auth_time).startswith("2026-01-01 10:00:00")
    required = _execute(empty_database, "SELECT name FROM role WHERE mfa_required ORDER BY name")
    assert required == [("admin",), ("superadmin",)]
    reset = _execute(
        empty_database,
        "SELECT r.name FROM role_permission p JOIN role r ON r.id = p.role_id "
        "WHERE p.permission = 'users:mfa_reset'",
    )
    assert reset == [("admin",)]

    migrate.downgrade(empty_database, "0010")

    assert _execute(empty_database, "SELECT count(*) FROM auth_session") == [(1,)]
