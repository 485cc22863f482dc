"""The draw as it runs: the worker opens, closes (freezing the ledger) and draws raffles on
time with the beacon (a fake drand on loopback); anyone can verify the result from the
public data with `atrium raffles verify` and the standard-library docs/apps/verify_draw.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from atrium.apps.raffles.commands import app as raffles_commands
from atrium.config import get_settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.apps.raffles.conftest import create_raffle, issue_tickets, run_jobs
from tests.apps.raffles.fakes import FakeDrand
from tests.conftest import Database
from tests.factories import login, signed_in_as

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "docs" / "apps" / "verify_draw.py"
ADMIN = "/api/v1/admin/raffles"
PUBLIC = "/api/v1/raffles"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("verify_draw", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _pages(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(path, params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def _drawn_raffle(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock, drand: FakeDrand
) -> tuple[dict[str, Any], dict[str, str]]:
    admin_id, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin, prizes=3)
    await issue_tickets(ctx, raffle["id"], admin_id, 6)
    await issue_tickets(ctx, raffle["id"], admin_id, 4)
    clock.advance(days=1, seconds=10)
    drand.latest = raffle["beacon_round"]
    await run_jobs(app)
    return raffle, admin


async def test_the_worker_closes_the_raffle_then_draws_it_once_the_round_is_out(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock, drand: FakeDrand
) -> None:
    admin_id, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin, prizes=3)
    await issue_tickets(ctx, raffle["id"], admin_id, 10)
    clock.advance(days=1, seconds=10)

    await run_jobs(app)
    closed = (await client.get(f"{PUBLIC}/{raffle['id']}")).json()
    drand.latest = raffle["beacon_round"]
    await run_jobs(app)
    draw = (await client.get(f"{PUBLIC}/{raffle['id']}/draw")).json()
    log = (await client.get(f"{PUBLIC}/draw-log")).json()["items"]

    assert closed["status"] == "closed"
    assert closed["draw"] is None
    assert draw["status"] == "drawn"
    assert draw["ticket_count"] == 10
    assert draw["beacon_value"] == drand.value(raffle["beacon_round"]).hex()
    assert len({w["number"] for w in draw["winners"]}) == 3
    assert [e["kind"] for e in log] == ["commitment", "close", "draw"]
    assert log[1]["data"]["ledger_hash"] == draw["ledger_hash"]
    assert _script().check_draw(draw, await _pages(client, f"{PUBLIC}/{raffle['id']}/ledger")) == []


async def test_the_standalone_script_verifies_the_api_output(
    client: httpx.AsyncClient,
    ctx: AppContext,
    app: Any,
    clock: FrozenClock,
    drand: FakeDrand,
    tmp_path: Path,
) -> None:
    raffle, _ = await _drawn_raffle(client, ctx, app, clock, drand)
    files = {
        "draw.json": (await client.get(f"{PUBLIC}/{raffle['id']}/draw")).json(),
        "ledger.json": await _pages(client, f"{PUBLIC}/{raffle['id']}/ledger"),
        "log.json": await _pages(client, f"{PUBLIC}/draw-log"),
    }
    for name, value in files.items():
        (tmp_path / name).write_text(json.dumps(value))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", str(SCRIPT), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    good = run("--draw", "draw.json", "--ledger", "ledger.json", "--log", "log.json")
    files["log.json"][1]["data"]["ticket_count"] = 11
    (tmp_path / "log.json").write_text(json.dumps(files["log.json"]))
    files["draw.json"]["winners"].reverse()
    (tmp_path / "draw.json").write_text(json.dumps(files["draw.json"]))
    bad = run("--draw", "draw.json", "--ledger", "ledger.json", "--log", "log.json")

    assert good.returncode == 0, good.stdout + good.stderr
    assert "chain intact" in good.stdout
    assert bad.returncode == 1
    assert "log entry 2: its hash does not match its content" in bad.stdout
    assert "the algorithm draws" in bad.stdout


async def test_atrium_raffles_verify_recomputes_the_draw_and_asks_the_beacon(
    client: httpx.AsyncClient,
    ctx: AppContext,
    app: Any,
    clock: FrozenClock,
    drand: FakeDrand,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raffle, _ = await _drawn_raffle(client, ctx, app, clock, drand)
    monkeypatch.setenv("ATRIUM_DATABASE__URL", database.url)
    monkeypatch.setenv("ATRIUM_DATA_DIR", str(ctx.settings.data_dir))
    get_settings.cache_clear()

    def verify() -> Any:  # the command runs its own event loop: in a thread
        return CliRunner().invoke(raffles_commands, ["verify", "--raffle", raffle["id"]])

    try:
        good = await anyio.to_thread.run_sync(verify)
        drand.signature = lambda round_: b"\x00" * 48  # type: ignore[method-assign]
        lying_beacon = await anyio.to_thread.run_sync(verify)
    finally:
        get_settings.cache_clear()

    assert good.exit_code == 0, good.output
    assert "ok: raffle" in good.output
    assert lying_beacon.exit_code == 1
    assert "beacon's value of the round is not the record's" in lying_beacon.output


async def test_a_raffle_with_no_ticket_closes_as_drawn_with_no_winner(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin)
    clock.advance(days=1, seconds=1)

    await run_jobs(app)
    draw = (await client.get(f"{PUBLIC}/{raffle['id']}/draw")).json()

    assert draw["status"] == "drawn"
    assert draw["winners"] == []
    assert draw["ticket_count"] == 0
    assert _script().check_draw(draw, []) == []


async def test_a_scheduled_raffle_opens_on_time(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(
        client, ctx, admin, opens_at=(clock.now() + timedelta(hours=1)).isoformat()
    )

    await run_jobs(app)
    early = (await client.get(f"{PUBLIC}/{raffle['id']}")).json()["status"]
    clock.advance(hours=1)
    await run_jobs(app)
    on_time = (await client.get(f"{PUBLIC}/{raffle['id']}")).json()["status"]

    assert (early, on_time) == ("scheduled", "open")


async def test_a_draw_by_hand_needs_raffles_draw_and_the_round(
    client: httpx.AsyncClient, ctx: AppContext, app: Any, clock: FrozenClock, drand: FakeDrand
) -> None:
    admin_id, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin)
    await issue_tickets(ctx, raffle["id"], admin_id, 3)
    clock.advance(days=1, seconds=1)
    await run_jobs(app)  # closes; the round is not out
    _, plain = await signed_in_as(client, ctx, "plain@example.com")
    admin = {"Authorization": f"Bearer {(await login(client, 'root@example.com'))['access_token']}"}

    refused = await client.post(f"{ADMIN}/{raffle['id']}/draw", headers=plain)
    early = await client.post(f"{ADMIN}/{raffle['id']}/draw", headers=admin)
    drand.latest = raffle["beacon_round"]
    clock.advance(seconds=10)
    drawn = await client.post(f"{ADMIN}/{raffle['id']}/draw", headers=admin)
    again = await client.post(f"{ADMIN}/{raffle['id']}/draw", headers=admin)

    assert refused.status_code == 403
    assert early.status_code == 503
    assert early.json()["code"] == "beacon_unavailable"
    assert drawn.status_code == 200, drawn.text
    assert len(drawn.json()["winners"]) == 1
    assert again.status_code == 409


async def test_an_unreachable_beacon_postpones_the_draw(
    client: httpx.AsyncClient,
    ctx: AppContext,
    app: Any,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from atrium.apps.raffles.settings import RafflesSettings

    admin_id, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin)
    await issue_tickets(ctx, raffle["id"], admin_id, 2)
    clock.advance(days=1, seconds=10)
    loaded = ctx.apps["raffles"]
    unreachable = RafflesSettings(beacon_url="http://127.0.0.1:9", beacon_timeout_seconds=1)
    monkeypatch.setitem(ctx.apps, "raffles", type(loaded)(loaded.app, unreachable))

    await run_jobs(app)

    assert (await client.get(f"{PUBLIC}/{raffle['id']}")).json()["status"] == "closed"


def test_the_verify_command_is_mounted_when_the_application_is_listed(tmp_path: Path) -> None:
    env = {
        "ATRIUM_APPS": '["raffles"]',
        "ATRIUM_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "ATRIUM_RAFFLES__JOBS_INTERVAL_SECONDS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "atrium", "raffles", "verify", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr
    assert "--raffle" in done.stdout
    assert "unknown variable" not in done.stderr
