"""A tiny application built on Atrium, used by the tests only: notes that an account
writes and others with ``notes:read`` can read. It has the shape every application has
(docs/architecture.md, "Adding an application"): routers, permissions, audit actions, a
settings group, its own Alembic branch and templates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from atrium.core.apps import AtriumApp
from tests.apps.notes.settings import NotesSettings

HERE = Path(__file__).parent


def _routers() -> Sequence[APIRouter]:
    # Imported once the permissions are registered: the routes `require` them.
    from tests.apps.notes.router import router

    return [router]


app = AtriumApp(
    name="notes",
    routers=_routers,
    permissions={
        "notes:read": "Read every account's notes.",
        "notes:write": "Write notes.",
    },
    audit_actions={"notes.created": "A note was written."},
    settings=NotesSettings,
    migrations=HERE / "migrations",
    templates=HERE / "templates",
)
