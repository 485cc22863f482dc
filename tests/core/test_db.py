"""The engine's per-connection PostgreSQL settings."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from atrium.config import DatabaseSettings, Settings
from atrium.core.db import create_engine

SHOW = text("SHOW max_parallel_workers_per_gather")


async def _show(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as conn:
            value: str | None = (await conn.execute(SHOW)).scalar()
            return value
    finally:
        await engine.dispose()


@pytest.mark.parametrize("configured", [0, 3, -1])
async def test_parallel_workers_per_gather_is_set_on_each_connection(
    settings: Settings, configured: int
) -> None:
    url = settings.database_url
    if not url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    database = DatabaseSettings(url=url, parallel_workers_per_gather=configured)

    value = await _show(create_engine(settings.model_copy(update={"database": database})))

    server = await _show(create_async_engine(url))  # a plain connection: the server's value
    assert value == (server if configured == -1 else str(configured))
    assert server != "3"  # the configured value is not the server's by chance
