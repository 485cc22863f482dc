"""The ``atrium`` command."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atrium import __version__
from atrium.cli import app
from atrium.config import get_settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("ATRIUM_DATABASE__URL", "ATRIUM_ADMIN_EMAIL", "ATRIUM_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ATRIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB", "1024")
    monkeypatch.setenv("ATRIUM_AUTH__ARGON2_TIME_COST", "1")
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"atrium {__version__}"


def test_migrate_sql_prints_the_ddl_without_touching_a_database(data_dir: Path) -> None:
    result = runner.invoke(app, ["migrate", "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE user_account" in result.output
    assert not (data_dir / "atrium.db").exists()


def test_migrate_creates_the_embedded_database(data_dir: Path) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "atrium.db").exists()


def test_create_admin_creates_a_superuser_then_promotes(data_dir: Path) -> None:
    args = ["create-admin", "--email", "root@example.com", "--password", "a long admin passphrase"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("created admin root@example.com")
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert second.output.startswith("promoted admin root@example.com")


def _db_rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "atrium.db") as conn:
        return list(conn.execute(sql))


def test_create_admin_grants_the_superadmin_role(data_dir: Path) -> None:
    args = ["create-admin", "--email", "root@example.com", "--password", "a long admin passphrase"]
    assert runner.invoke(app, args).exit_code == 0

    roles = _db_rows(
        data_dir,
        "SELECT r.name FROM user_role ur JOIN role r ON r.id = ur.role_id "
        "JOIN user_account u ON u.id = ur.user_id WHERE u.email = 'root@example.com' "
        "ORDER BY r.name",
    )
    assert roles == [("superadmin",), ("user",)]
    assert _db_rows(data_dir, "SELECT action FROM audit_event") == [("role.granted",)]


def test_seed_creates_users_roles_and_events(data_dir: Path) -> None:
    result = runner.invoke(app, ["seed", "--users", "2500", "--batch-size", "1000"])
    assert result.exit_code == 0, result.output
    assert "seeded 2500 users" in result.output
    assert _db_rows(data_dir, "SELECT count(*) FROM user_account") == [(2500,)]
    assert _db_rows(data_dir, "SELECT count(DISTINCT user_id) FROM user_role") == [(2500,)]
    assert _db_rows(data_dir, "SELECT count(*) FROM audit_event") == [(2500,)]
    # Again: more accounts, no clash with the first ones.
    assert runner.invoke(app, ["seed", "--users", "10"]).exit_code == 0
    assert _db_rows(data_dir, "SELECT count(*) FROM user_account") == [(2510,)]


def test_purge_deleted_removes_expired_accounts(data_dir: Path) -> None:
    assert runner.invoke(app, ["seed", "--users", "1000"]).exit_code == 0
    expired = _db_rows(
        data_dir,
        "SELECT count(*) FROM user_account WHERE deleted_at < datetime('now', '-30 days')",
    )[0][0]

    result = runner.invoke(app, ["purge-deleted"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"purged {expired} accounts"
    assert expired > 0
    assert (
        _db_rows(data_dir, "SELECT count(*) FROM user_account WHERE deleted_at IS NOT NULL")[0][0]
        > 0
    )  # the recent ones stay


def test_create_admin_refuses_a_weak_password(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["create-admin", "--email", "root@example.com", "--password", "password1"]
    )
    assert result.exit_code == 2
    assert "weak_password" in result.output


def _outbox_row(data_dir: Path, status: str) -> None:
    import asyncio
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy.ext.asyncio import create_async_engine

    from atrium.models import OutboxMessage

    async def run() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{data_dir / 'atrium.db'}")
        now = datetime.now(UTC)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    OutboxMessage.__table__.insert().values(
                        id=uuid.uuid4(),
                        template="password_changed",
                        to_address="a@example.com",
                        locale="en",
                        context={},
                        status=status,
                        attempts=8,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_mail_status_counts_messages_by_state(data_dir: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    _outbox_row(data_dir, "failed")
    _outbox_row(data_dir, "sent")
    _outbox_row(data_dir, "sent")

    result = runner.invoke(app, ["mail", "status"])

    assert result.exit_code == 0, result.output
    assert result.output.split("\n")[:4] == ["pending  0", "sending  0", "sent     2", "failed   1"]


def test_mail_retry_failed_queues_failed_messages_again(data_dir: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    _outbox_row(data_dir, "failed")
    _outbox_row(data_dir, "failed")

    result = runner.invoke(app, ["mail", "retry-failed"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 failed message(s) queued again"
    status = runner.invoke(app, ["mail", "status"])
    assert "pending  2" in status.output
    assert "failed   0" in status.output


def test_create_admin_without_a_terminal_says_what_to_give(data_dir: Path) -> None:
    result = runner.invoke(app, ["create-admin"], input="")

    assert result.exit_code == 2
    assert "Aborted" not in result.output
    assert result.output.strip().splitlines() == [
        "error: no terminal to ask on: give --email (or ATRIUM_ADMIN_EMAIL) and "
        "--password (or ATRIUM_ADMIN_PASSWORD)"
    ]
    assert not (data_dir / "atrium.db").exists()


def test_create_admin_reads_the_password_from_the_environment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_ADMIN_PASSWORD", "a long admin passphrase")

    result = runner.invoke(app, ["create-admin", "--email", "admin@example.com"], input="")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("created admin admin@example.com")


def test_create_admin_options_are_not_marked_required() -> None:
    result = runner.invoke(app, ["create-admin", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "--email" in result.output
    assert "required" not in result.output.lower()
