"""``atrium import users``: run an import from a file, outside the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from atrium.config import Settings
from atrium.core.cache import create_cache
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine
from atrium.imports.formats import ImportFormat
from atrium.imports.service import ImportOutcome, import_users, refresh_caches


async def import_file(
    settings: Settings,
    path: Path,
    fmt: ImportFormat,
    *,
    dry_run: bool,
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import ``path`` (UTF-8 text in ``fmt``) into the configured database.

    With Redis configured, once the import has committed, the cached public profiles it
    changed are dropped from Redis and a new RBAC version is published there (roles granted
    to existing accounts apply on the next request). The in-process cache of the embedded
    default lives in the server's process, out of this command's reach: there a running
    server may show a changed profile as it was for up to ``profiles.cache_ttl_seconds``
    and apply granted roles after ``rbac.permission_cache_ttl_seconds`` (docs/import.md).

    Raises:
        OSError: the file cannot be read.
    """
    engine = create_engine(settings, statement_timeouts=False)
    try:
        with path.open(encoding="utf-8-sig", newline="") as source:
            outcome = await import_users(
                engine, source, fmt, now=SystemClock().now(), dry_run=dry_run, progress=progress
            )
    finally:
        await engine.dispose()
    if settings.redis.url and outcome.committed:
        cache = create_cache(settings)
        try:
            await refresh_caches(cache, outcome)
        finally:
            await cache.close()
    return outcome
