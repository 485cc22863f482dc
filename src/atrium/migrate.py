"""Running Alembic programmatically: ``atrium migrate`` and the test suite use this."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

from atrium.core.apps import declared_apps

PLATFORM_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def alembic_config(database_url: str, apps: Sequence[str] = ()) -> Config:
    """The Alembic configuration of the platform's revisions and those of ``apps``
    (``ATRIUM_APPS`` entries; each application's revisions are a branch labelled with its
    name).

    Raises:
        AppLoadError: an application cannot be loaded.
    """
    cfg = Config()
    cfg.set_main_option("script_location", "atrium:migrations")
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    locations = [PLATFORM_VERSIONS] + [
        app.migrations for app in declared_apps(apps) if app.migrations is not None
    ]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(
    database_url: str, revision: str = "heads", *, sql: bool = False, apps: Sequence[str] = ()
) -> None:
    """Upgrade the database at ``database_url`` (``sql=True`` prints the SQL instead):
    the platform's revisions and the branch of each application of ``apps``. ``head`` means
    every head (``heads``): one per application besides the platform's.

    For a SQLite file, its folder is created first.
    """
    if revision == "head":
        revision = "heads"
    url = make_url(database_url)
    if (
        not sql
        and url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
    ):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url, apps), revision, sql=sql)


def downgrade(database_url: str, revision: str = "base", *, apps: Sequence[str] = ()) -> None:
    command.downgrade(alembic_config(database_url, apps), revision)
