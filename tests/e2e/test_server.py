"""End to end: ``atrium serve`` as a real process on a free port and a temporary SQLite file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import jwt
import pytest

from tests.readiness import wait_until_ready

pytestmark = pytest.mark.e2e

ATRIUM = str(Path(sys.executable).with_name("atrium"))
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A running ``atrium serve`` process, its base URL and data folder."""

    def __init__(
        self, tmp_path: Path, args: tuple[str, ...], env: dict[str, str] | None = None
    ) -> None:
        self.proc, self.base, self.data_dir, self.log = _start(tmp_path, *args, env=env)

    def stop(self) -> None:
        # The whole process group: granian's workers must not outlive the test.
        _signal_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc, signal.SIGKILL)
            self.proc.wait()
        finally:
            self.log.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _start(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path, BinaryIO]:
    port = _free_port()
    data_dir = tmp_path / "var"
    extra = env or {}
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
        | {
            "ATRIUM_DATA_DIR": str(data_dir),
            "ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB": "1024",
            "ATRIUM_AUTH__ARGON2_TIME_COST": "1",
            "ATRIUM_ADMIN_EMAIL": "root@example.com",
            "ATRIUM_ADMIN_PASSWORD": "a long admin passphrase",
        }
        | extra
    )
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [ATRIUM, "serve", "--port", str(port), *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    # 240 s: a loaded CI machine starts slowly.
    if wait_until_ready(base, proc, 240, request_timeout=1):
        return proc, base, data_dir, log
    if proc.poll() is not None:
        log.close()
        raise AssertionError((tmp_path / "server.log").read_text())
    _signal_group(proc, signal.SIGKILL)
    proc.wait()
    log.close()
    raise AssertionError("server did not become ready:\n" + (tmp_path / "server.log").read_text())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    running = Server(tmp_path, ())
    yield running.base, running.data_dir
    running.stop()


@pytest.fixture
def two_worker_server(tmp_path: Path) -> Iterator[str]:
    running = Server(tmp_path, ("--workers", "2"))
    yield running.base
    running.stop()


def test_register_login_me_refresh_logout_over_http(server: tuple[str, Path]) -> None:
    base, data_dir = server
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/api/v1/auth/register", json={"email": "e2e@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        r = http.post(
            "/api/v1/auth/login", data={"username": "e2e@example.com", "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        tokens = r.json()
        me = http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json()["email"] == "e2e@example.com"
        r = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200
        new = r.json()
        auth = {"Authorization": f"Bearer {new['access_token']}"}
        assert http.post("/api/v1/auth/logout", headers=auth).status_code == 204
        assert http.get("/api/v1/users/me", headers=auth).status_code == 401
        r = http.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
        assert r.status_code == 401
    assert (data_dir / "atrium.db").exists()
    assert (data_dir / "signing_key.pem").stat().st_mode & 0o077 == 0


def test_first_run_creates_admin_from_environment(server: tuple[str, Path]) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/api/v1/auth/login",
            data={"username": "root@example.com", "password": "a long admin passphrase"},
        )
        assert r.status_code == 200
        me = http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["is_superuser"] is True
        assert me.json()["email_verified"] is True  # the operator chose the address


def test_docs_are_served_without_internet(server: tuple[str, Path]) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=10) as http:
        for page in ("/docs", "/redoc"):
            html = http.get(page).text
            assert "cdn" not in html.lower()
        assert http.get("/openapi.json").status_code == 200


def test_several_workers_share_one_database_and_signing_key(two_worker_server: str) -> None:
    base = two_worker_server
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/api/v1/auth/register", json={"email": "w@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
        kids = set()
        jwks = {k["kid"]: k for k in http.get("/.well-known/jwks.json").json()["keys"]}
        assert len(jwks) == 1
        for _ in range(12):
            # New connections spread over both worker processes.
            with httpx.Client(base_url=base, timeout=10) as fresh:
                r = fresh.post(
                    "/api/v1/auth/login", data={"username": "w@example.com", "password": PASSWORD}
                )
                assert r.status_code == 200
                token = r.json()["access_token"]
                kids.add(jwt.get_unverified_header(token)["kid"])
                assert (
                    fresh.get(
                        "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
                    ).status_code
                    == 200
                )
        assert kids == set(jwks)


def test_metrics_aggregate_every_worker_process(two_worker_server: str) -> None:
    base = two_worker_server
    for _ in range(20):
        # New connections spread over both worker processes.
        with httpx.Client(base_url=base, timeout=10) as fresh:
            assert fresh.get("/health/live").status_code == 200
    with httpx.Client(base_url=base, timeout=10) as http:
        text = http.get("/metrics").text
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("atrium_http_requests_total{") and 'route="/health/live"' in line
    )
    assert total >= 20


def test_uvicorn_remains_available_as_the_server(tmp_path: Path) -> None:
    running = Server(tmp_path, ("--server", "uvicorn"))
    try:
        with httpx.Client(base_url=running.base, timeout=10) as http:
            r = http.post(
                "/api/v1/auth/register", json={"email": "uv@example.com", "password": PASSWORD}
            )
            assert r.status_code == 201
            assert http.get("/health/ready").json()["status"] == "ok"
    finally:
        running.stop()
