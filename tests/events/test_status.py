"""``atrium events status`` and the event metrics."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from atrium.cli import app
from atrium.config import get_settings
from atrium.context import AppContext
from atrium.core.db import unit_of_work
from atrium.events.dispatcher import Consumer, EventDispatcher, EventEnvelope
from atrium.events.service import emit

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in ("ATRIUM_DATABASE__URL", "ATRIUM_ADMIN_EMAIL", "ATRIUM_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ATRIUM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB", "1024")
    monkeypatch.setenv("ATRIUM_AUTH__ARGON2_TIME_COST", "1")
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_events_status_shows_the_backlog_of_a_new_admin(data_dir: Path) -> None:
    args = ["create-admin", "--email", "root@example.com", "--password", "a long admin passphrase"]
    assert runner.invoke(app, args).exit_code == 0

    result = runner.invoke(app, ["events", "status"])

    assert result.exit_code == 0, result.output
    # create-admin emitted user.created and role.granted; no worker has run.
    assert re.match(r"undispatched events\s+2 \(oldest \d+ s\)", result.output)
    retry = runner.invoke(app, ["events", "retry-failed", "--consumer", "webhooks"])
    assert retry.exit_code == 0, retry.output
    assert retry.output.startswith("0 failed")


async def test_metrics_show_backlog_and_deliveries_by_consumer(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    async def fail(event: EventEnvelope, db: object) -> None:
        raise ConnectionError("down")

    async with unit_of_work(ctx.sessionmaker) as db:
        await emit(db, "user.restored", subject=uuid.uuid4(), at=ctx.clock.now())
        await emit(db, "user.restored", subject=uuid.uuid4(), at=ctx.clock.now())
    before = (await client.get("/metrics")).text
    assert "atrium_events_undispatched 2.0" in before
    await EventDispatcher(
        ctx.sessionmaker, ctx.settings, ctx.clock, [Consumer("hooks", ("*",), fail)]
    ).run_once()

    text = (await client.get("/metrics")).text
    assert "atrium_events_undispatched 0.0" in text
    assert 'atrium_event_delivery_rows{consumer="hooks",state="pending"} 2.0' in text
    assert re.search(r'atrium_event_deliveries_total\{consumer="hooks",outcome="retry"\} \d', text)
