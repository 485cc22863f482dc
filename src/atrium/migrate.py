"""Running Alembic programmatically: ``atrium migrate`` and the test suite use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "atrium:migrations")
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head", *, sql: bool = False) -> None:
    """Upgrade the database at ``database_url`` (``sql=True`` prints the SQL instead).

    For a SQLite file, its folder is created first.
    """
    url = make_url(database_url)
    if (
        not sql
        and url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
    ):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision, sql=sql)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
