"""``atrium import users``: the summary, errors by line on stderr, exit status, dry run."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atrium.cli import app
from atrium.config import get_settings
from tests.conftest import REDIS_URL
from tests.imports import hashes

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("ATRIUM_DATABASE__URL", raising=False)
    monkeypatch.setenv("ATRIUM_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    yield tmp_path / "var"
    get_settings.cache_clear()


def _emails(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "atrium.db") as conn:
        return [r[0] for r in conn.execute("SELECT email FROM user_account ORDER BY email")]


def test_import_users_imports_a_csv_file_and_reruns_as_updates(
    data_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_text(
        f"email,password_hash\na@example.org,{hashes.bcrypt_hash()}\nb@example.org,\n"
    )

    dry = runner.invoke(app, ["import", "users", str(source), "--format", "csv", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would import 2 records: 2 created, 0 updated" in dry.output
    assert _emails(data_dir) == []

    first = runner.invoke(app, ["import", "users", str(source), "--format", "csv"])
    again = runner.invoke(app, ["import", "users", str(source)])
    assert (first.exit_code, again.exit_code) == (0, 0)
    assert "imported 2 records: 2 created, 0 updated" in first.output
    assert "imported 2 records: 0 created, 2 updated" in again.output
    assert "note: a running server keeps its in-process cache" in again.output
    assert "note:" not in first.output  # nothing was updated
    assert _emails(data_dir) == ["a@example.org", "b@example.org"]


def test_import_users_lists_errors_by_line_and_exits_1(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "users.json"
    source.write_text('{"email": "a@example.org"}\n{"email": "nope"}\n{"email": 1')

    result = runner.invoke(app, ["import", "users", str(source), "--format", "json"])

    assert result.exit_code == 1
    assert "line 2: email:" in result.output
    assert "line 3: invalid JSON" in result.output
    assert "2 error(s) in 3 records: nothing imported" in result.output
    assert _emails(data_dir) == []


@pytest.mark.skipif(not REDIS_URL, reason="needs ATRIUM_TEST_REDIS_URL")
def test_a_rerun_drops_stale_profiles_and_publishes_a_new_rbac_version_in_redis(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    prefix = f"atrium-test:cli-import:{uuid.uuid4().hex}:"
    monkeypatch.setenv("ATRIUM_REDIS__URL", str(REDIS_URL))
    monkeypatch.setenv("ATRIUM_REDIS__KEY_PREFIX", prefix)
    get_settings.cache_clear()
    source = tmp_path / "users.csv"
    source.write_text("email,username,display_name\nada@example.org,ada_l,Ada\n")
    assert runner.invoke(app, ["import", "users", str(source)]).exit_code == 0
    client = redis.Redis.from_url(str(REDIS_URL))
    try:
        # What a server sharing this Redis cached meanwhile: two public profiles and the
        # RBAC version its permission entries are keyed by.
        client.set(f"{prefix}profile:v1:ada_l", b"{}")
        client.set(f"{prefix}profile:v1:grace", b"{}")
        client.set(f"{prefix}rbac:version", b"before")
        source.write_text("email,username,display_name\nada@example.org,ada_lovelace,Ada L\n")

        again = runner.invoke(app, ["import", "users", str(source)])

        assert again.exit_code == 0, again.output
        assert "0 created, 1 updated" in again.output
        assert "note:" not in again.output  # Redis is shared with the servers
        assert client.exists(f"{prefix}profile:v1:ada_l") == 0
        assert client.exists(f"{prefix}profile:v1:grace") == 1  # not in the import
        assert client.get(f"{prefix}rbac:version") not in (None, b"before")
    finally:
        if keys := client.keys(f"{prefix}*"):
            client.delete(*keys)
        client.close()
