"""deploy/compose.yaml: podman-compose reads it, and it has the promised shape. (Running it
needs the PostgreSQL, Redis, MinIO, Mailpit and Caddy images from Docker Hub, which the CI
machines cannot reach: docs/deployment.md.)"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from atrium.config import Settings
from tests.deploy.conftest import DEPLOY, need, need_compose
from tests.test_docs import _env_names

COMPOSE = DEPLOY / "compose.yaml"
ATRIUM_SERVICES = {"migrate", "api-1", "api-2", "worker"}
SETTINGS = set(_env_names(Settings, "ATRIUM_"))


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The compose file as podman-compose resolves it (anchors, merges, paths)."""
    tool = need_compose()
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "config"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_compose_has_every_service(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "mailpit",
        "proxy",
        *ATRIUM_SERVICES,
    }


def test_atrium_services_share_image_settings_and_signing_key(config: dict[str, Any]) -> None:
    services = [config["services"][name] for name in ATRIUM_SERVICES]

    assert len({s["image"] for s in services}) == 1
    assert len({json.dumps(s["environment"], sort_keys=True) for s in services}) == 1
    assert all("signing_key" in s["secrets"] for s in services)
    env = services[0]["environment"]
    assert env["ATRIUM_AUTH__SIGNING_KEY_FILE"] == "/run/secrets/signing_key"
    assert env["ATRIUM_DATABASE__AUTO_MIGRATE"] == "false"


def test_atrium_settings_are_real_settings_or_files_of_them(config: dict[str, Any]) -> None:
    env = config["services"]["api-1"]["environment"]
    names = {re.sub(r"_FILE$", "", k) if k not in SETTINGS else k for k in env}

    assert names - SETTINGS == set()


def test_services_wait_for_what_they_need(config: dict[str, Any]) -> None:
    services = config["services"]

    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api-1", "api-2", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert {n: d["condition"] for n, d in services["proxy"]["depends_on"].items()} == {
        "api-1": "service_healthy",
        "api-2": "service_healthy",
    }


def test_long_running_services_have_health_checks(config: dict[str, Any]) -> None:
    services = config["services"]
    checked = {n for n, s in services.items() if "test" in s.get("healthcheck", {})}

    assert checked == {"postgres", "redis", "minio", "mailpit", "api-1", "api-2"}
    assert "/health/ready" in " ".join(services["api-1"]["healthcheck"]["test"])


def test_proxy_balances_both_api_nodes_and_is_the_trusted_proxy(config: dict[str, Any]) -> None:
    caddyfile = (DEPLOY / "compose" / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert upstreams.group(1).split() == ["api-1:8000", "api-2:8000"]
    trusted = json.loads(config["services"]["api-1"]["environment"]["ATRIUM_HTTP__TRUSTED_PROXIES"])
    proxy_address = config["services"]["proxy"]["networks"]["atrium"]["ipv4_address"]
    assert any(ipaddress.ip_address(proxy_address) in ipaddress.ip_network(n) for n in trusted)


def test_secrets_are_files(config: dict[str, Any]) -> None:
    assert {n: s["file"].rsplit("/", 1)[-1] for n, s in config["secrets"].items()} == {
        "postgres_password": "postgres_password",
        "database_url": "database_url",
        "signing_key": "signing_key.pem",
        "minio_password": "minio_password",
        "metrics_token": "metrics_token",
        "api_key_secret": "api_key_secret",
    }


def test_make_secrets_writes_matching_secrets_once(tmp_path: Path) -> None:
    need("openssl", "openssl")
    env = {**os.environ, "ATRIUM_SECRETS_DIR": str(tmp_path / "secrets")}
    script = DEPLOY / "compose" / "make-secrets.sh"
    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True)
    secrets = tmp_path / "secrets"
    key_pem = (secrets / "signing_key.pem").read_bytes()

    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True)

    assert (secrets / "signing_key.pem").read_bytes() == key_pem
    assert isinstance(load_pem_private_key(key_pem, password=None), Ed25519PrivateKey)
    password = (secrets / "postgres_password").read_text().strip()
    assert len(password) >= 32
    assert f"atrium:{password}@postgres:5432" in (secrets / "database_url").read_text()
    assert (secrets.stat().st_mode & 0o777) == 0o700
