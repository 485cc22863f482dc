"""An application built on Atrium (tests/apps/notes) is mounted only when listed in
``ATRIUM_APPS``, with its routes, permissions (through the RBAC catalogue), audit actions,
settings group, templates and its own Alembic branch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect

from atrium import migrate
from atrium.audit.service import ACTIONS
from atrium.config import Settings
from atrium.core.apps import AppLoadError
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from atrium.rbac.permissions import PERMISSIONS
from tests.factories import login, signed_in_as

NOTES = "/api/v1/apps/notes"
APP = "tests.apps.notes"


@pytest.fixture(autouse=True)
def catalogues() -> Iterator[None]:
    """The permission and audit catalogues as they were: registering the application is
    per process, and the other tests expect the platform's alone."""
    permissions, actions = dict(PERMISSIONS), dict(ACTIONS)
    yield
    PERMISSIONS.clear()
    PERMISSIONS.update(permissions)
    ACTIONS.clear()
    ACTIONS.update(actions)


def _tables(url: str) -> set[str]:
    engine = create_engine(url.replace("+aiosqlite", ""))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def notes_settings(settings: Settings, tmp_path: Path) -> Settings:
    """SQLite, with the notes application listed and its branch migrated."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}"
    settings.database.url = url
    settings.apps = [APP]
    migrate.upgrade(url, apps=settings.apps)
    return settings


@pytest.fixture
async def notes_client(notes_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(notes_settings, FrozenClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            yield c, app.state.ctx


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_application_is_mounted_with_its_permissions_and_audit_actions(
    notes_client: tuple[httpx.AsyncClient, Any],
) -> None:
    client, ctx = notes_client
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    _, plain = await signed_in_as(client, ctx, "plain@example.com")

    created = await client.post(NOTES, json={"body": "<b>hello</b>"}, headers=root)
    refused = await client.post(NOTES, json={"body": "no"}, headers=plain)
    note_id = created.json()["id"]
    read = await client.get(f"{NOTES}/{note_id}", headers=root)
    card = await client.get(f"{NOTES}/{note_id}/card", headers=root)
    events = await client.get(
        "/api/v1/admin/audit-events", headers=root, params={"action": "notes.created"}
    )

    assert created.status_code == 201, created.text
    assert read.json()["body"] == "<b>hello</b>"
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "notes:write" in refused.json()["detail"]
    assert card.headers["content-type"].startswith("text/html")
    assert card.text.strip() == '<article class="note">&lt;b&gt;hello&lt;/b&gt;</article>'
    assert [e["target_id"] for e in events.json()["items"]] == [note_id]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_role_can_carry_the_application_permissions(
    notes_client: tuple[httpx.AsyncClient, Any],
) -> None:
    client, ctx = notes_client
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    writer_id, _ = await signed_in_as(client, ctx, "writer@example.com")

    role = await client.post(
        "/api/v1/admin/roles",
        json={"name": "note-writer", "permissions": ["notes:write"]},
        headers=root,
    )
    granted = await client.put(f"/api/v1/admin/users/{writer_id}/roles/note-writer", headers=root)
    tokens = await login(client, "writer@example.com")
    writer = {"Authorization": f"Bearer {tokens['access_token']}"}
    written = await client.post(NOTES, json={"body": "mine"}, headers=writer)
    not_readable = await client.get(f"{NOTES}/{written.json()['id']}", headers=writer)

    assert role.status_code == 201, role.text
    assert granted.status_code == 200, granted.text
    assert written.status_code == 201
    assert not_readable.status_code == 403


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_application_reads_its_own_settings_group(
    notes_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_NOTES__MAX_LENGTH", "5")
    app = create_app(notes_settings, FrozenClock())
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
            short = await client.post(NOTES, json={"body": "12345"}, headers=root)
            long = await client.post(NOTES, json={"body": "123456"}, headers=root)

    assert short.status_code == 201
    assert long.status_code == 422


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_bad_value_of_the_settings_group_stops_start_up(
    notes_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_NOTES__MAX_LENGTH", "lots")

    with pytest.raises(AppLoadError, match="settings of 'notes' are not valid: max_length"):
        create_app(notes_settings, FrozenClock())


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_an_application_not_listed_is_not_mounted(client: httpx.AsyncClient) -> None:
    response = await client.post(NOTES, json={"body": "x"})

    assert response.status_code == 404
    assert "notes:write" not in PERMISSIONS


def test_its_migrations_are_a_branch_of_their_own(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    migrate.upgrade(url)
    platform_only = _tables(url)
    migrate.upgrade(url, apps=[APP])
    with_app = _tables(url)
    migrate.downgrade(url, "notes@base", apps=[APP])
    after_app_downgrade = _tables(url)

    assert "notes_note" not in platform_only
    assert with_app - platform_only == {"notes_note"}
    assert after_app_downgrade == platform_only


def test_atrium_migrate_upgrades_the_listed_applications(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {
        "ATRIUM_DATABASE__URL": url,
        "ATRIUM_APPS": f'["{APP}"]',
        "ATRIUM_DATA_DIR": str(tmp_path / "var"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "atrium", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "notes_note" in _tables(url)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("tests.apps.missing", "cannot import 'tests.apps.missing'"),
        ("tests.apps", "has no 'app' of type AtriumApp"),
    ],
)
def test_an_entry_that_cannot_be_loaded_is_named(entry: str, message: str) -> None:
    from atrium.core.apps import declared_apps

    with pytest.raises(AppLoadError, match=message):
        declared_apps([entry])


def test_the_platform_never_imports_an_application(tmp_path: Path) -> None:
    code = (
        "import sys; from atrium.config import Settings; from atrium.main import create_app; "
        "create_app(Settings(_env_file=None)); "
        "print(sorted(m for m in sys.modules if m.startswith(('atrium.apps.', 'tests.apps'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": "/usr/bin:/bin", "ATRIUM_DATA_DIR": str(tmp_path)},
    )

    assert done.stdout.strip() == "[]"
