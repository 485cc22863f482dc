"""``atrium import users``: run an import from a file, outside the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from atrium.config import Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine
from atrium.imports.formats import ImportFormat
from atrium.imports.service import ImportOutcome, import_users


async def import_file(
    settings: Settings,
    path: Path,
    fmt: ImportFormat,
    *,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import ``path`` (UTF-8 text in ``fmt``) into the configured database.

    Raises:
        OSError: the file cannot be read.
    """
    engine = create_engine(settings, statement_timeouts=False)
    try:
        with path.open(encoding="utf-8-sig", newline="") as source:
            return await import_users(
                engine, source, fmt, now=SystemClock().now(), dry_run=dry_run, progress=progress
            )
    finally:
        await engine.dispose()
