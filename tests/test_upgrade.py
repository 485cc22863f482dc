"""Upgrading a database the previous release filled: its accounts still log in and keep
their roles (docs/migrations.md). The whole API suite also runs on such a database in CI
(ATRIUM_TEST_UPGRADE_FROM=previous, .ci/deploy-checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atrium import migrate
from atrium.config import AuthSettings, DatabaseSettings, Environment, Settings
from atrium.main import create_app
from tests.conftest import FAST_ARGON2, PG_URL
from tests.test_migrations import _execute, _pg_scratch_url
from tests.upgrade_seed import previous_head, seed_previous_release


@pytest.fixture
def empty_database() -> Iterator[str]:
    # PostgreSQL, the production database: rolling upgrades happen there. (An embedded
    # SQLite install upgrades on start; tests/test_migrations.py covers its revisions.)
    if PG_URL is None:
        pytest.skip("ATRIUM_TEST_DATABASE_URL is not set")
    yield from _pg_scratch_url()


def test_previous_head_is_the_revision_before_head(empty_database: str) -> None:
    previous = previous_head(empty_database)
    migrate.upgrade(empty_database, previous)

    assert _execute(empty_database, "SELECT version_num FROM alembic_version") == [(previous,)]


@pytest.fixture
def upgraded(empty_database: str) -> tuple[str, dict[str, str]]:
    """A database seeded by the previous release, then upgraded to head."""
    accounts = seed_previous_release(empty_database)
    migrate.upgrade(empty_database)
    return empty_database, accounts


async def test_accounts_of_the_previous_release_log_in_after_the_upgrade(
    upgraded: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    empty_database, accounts = upgraded
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path / "var",
        database=DatabaseSettings(url=empty_database, auto_migrate=False),
        auth=AuthSettings(**FAST_ARGON2),
        gc_freeze=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            for email, password in accounts.items():
                login = await c.post(
                    "/api/v1/auth/login", data={"username": email, "password": password}
                )
                assert login.status_code == 200, login.text
                me = await c.get(
                    "/api/v1/users/me",
                    headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                )
                assert me.status_code == 200, me.text
                assert me.json()["email"] == email
                assert "user" in me.json()["roles"]
