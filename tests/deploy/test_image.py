"""The container image's recipe (Dockerfile, .dockerignore, entry point). Building and
running it is deploy/test/image.sh (run by .ci/deploy-checks)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import typer.main

from atrium.cli import app
from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"


def test_entrypoint_passes_every_atrium_command_to_atrium() -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    listed = re.search(r'""\|-\*\|([\w|-]+)\) exec atrium', ENTRYPOINT.read_text())

    assert listed is not None
    assert set(listed.group(1).split("|")) == commands


def test_entrypoint_reads_settings_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "database_url"
    secret.write_text("postgresql+asyncpg://atrium:s3cret@db/atrium")
    env = {
        "PATH": os.environ["PATH"],
        "ATRIUM_DATABASE__URL_FILE": str(secret),
        "ATRIUM_AUTH__SIGNING_KEY_FILE": "/run/secrets/signing_key",
    }

    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "env"], env=env, capture_output=True, text=True, check=True
    )

    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert seen["ATRIUM_DATABASE__URL"] == "postgresql+asyncpg://atrium:s3cret@db/atrium"
    assert "ATRIUM_DATABASE__URL_FILE" not in seen
    # A setting that takes a file itself is left to Atrium.
    assert seen["ATRIUM_AUTH__SIGNING_KEY_FILE"] == "/run/secrets/signing_key"
    assert "ATRIUM_AUTH__SIGNING_KEY" not in seen


def test_entrypoint_refuses_an_unreadable_secret_file(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "ATRIUM_REDIS__URL_FILE": str(tmp_path / "missing")}

    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "env"], env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode == 2
    assert "ATRIUM_REDIS__URL_FILE" in result.stderr


def test_dockerfile_base_is_swappable_and_defaults_to_python_slim() -> None:
    assert DOCKERFILE.count("FROM ${BASE_IMAGE}") == 2
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE


def test_dockerfile_installs_locked_runtime_dependencies_only() -> None:
    assert "uv sync --frozen --no-dev" in DOCKERFILE


def test_image_runs_as_a_non_root_user_with_a_data_volume() -> None:
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    assert 'VOLUME ["/data"]' in DOCKERFILE
    assert "ATRIUM_DATA_DIR=/data" in DOCKERFILE


def test_image_health_check_calls_the_liveness_endpoint() -> None:
    assert re.search(r"^HEALTHCHECK .*", DOCKERFILE, re.M)
    assert "HEALTHCHECK_URL=http://127.0.0.1:8000/health/live" in DOCKERFILE


def test_image_starts_atrium_serve_by_default() -> None:
    assert 'ENTRYPOINT ["/usr/local/bin/atrium-entrypoint"]' in DOCKERFILE
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in DOCKERFILE


def test_image_carries_oci_labels() -> None:
    labels = set(re.findall(r"org\.opencontainers\.image\.(\w+)=", DOCKERFILE))

    assert {"title", "version", "revision", "created", "source", "licenses"} <= labels


def test_build_context_leaves_out_local_state() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()

    assert ignore[0 if not ignore[0].startswith("#") else 1] == "*"
    assert {"!pyproject.toml", "!uv.lock", "!src/", "!deploy/docker/"} <= set(ignore)
