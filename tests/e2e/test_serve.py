"""``atrium serve`` as started by hand: the port it is given, and what it tells the operator."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
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


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
        "ATRIUM_DATA_DIR": str(tmp_path / "var"),
        "ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB": "1024",
        "ATRIUM_AUTH__ARGON2_TIME_COST": "1",
        "ATRIUM_MAIL__POLL_INTERVAL_SECONDS": "0.2",
        **extra,
    }


class Serve:
    def __init__(self, tmp_path: Path, port: int, *args: str, **env: str) -> None:
        self.log_path = tmp_path / f"serve-{port}-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [ATRIUM, "serve", "--port", str(port), *args],
                env=_env(tmp_path, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        self.base = f"http://127.0.0.1:{port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        if wait_until_ready(self.base, self.proc, 120, request_timeout=1):
            return
        if self.proc.poll() is not None:
            raise AssertionError(self.log)
        raise AssertionError(f"not ready:\n{self.log}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=30)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path, _free_port())
    server.wait_ready()
    yield server
    server.stop()


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_serve_refuses_a_port_in_use_with_one_line(tmp_path: Path, server: str) -> None:
    first = Serve(tmp_path, _free_port(), "--server", server)
    try:
        first.wait_ready()
        port = first.base.rsplit(":", 1)[1]
        second = Serve(tmp_path, int(port), "--server", server)
        code = second.proc.wait(timeout=120)
        log = second.log
    finally:
        first.stop()

    assert code == 2
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: port {port} on 127.0.0.1 is already in use (another atrium serve?): stop that "
        "server, or choose another port with --port (make serve PORT=8080)"
    ]


def test_serve_refuses_a_port_held_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        server = Serve(tmp_path, port)
        code = server.proc.wait(timeout=120)

    assert code == 2
    assert f"error: port {port} on 127.0.0.1 is already in use" in server.log


def _wait_for_eml(directory: Path, count: int = 1) -> list[Path]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        files = sorted(directory.glob("*.eml"))
        if len(files) >= count:
            return files
        time.sleep(0.1)
    raise AssertionError("no .eml written")


def test_emailed_links_lead_to_the_server_on_its_own_port_readable_in_the_eml(
    running: Serve, tmp_path: Path
) -> None:
    r = httpx.post(
        f"{running.base}/api/v1/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD},
        timeout=30,
    )
    assert r.status_code == 201, r.text

    (eml,) = _wait_for_eml(tmp_path / "var" / "mail")
    raw = eml.read_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert text["Content-Transfer-Encoding"] in ("7bit", "8bit")
    # The link as a reader of the raw file sees it: whole, on one line, this server's port.
    link = re.search(rb"http://\S+verify-email\?token=[A-Za-z0-9_-]+", raw)
    assert link is not None
    assert link.group().decode().startswith(f"{running.base}/verify-email?token=")
    token = link.group().decode().rpartition("=")[2]
    assert len(token) == 43  # secrets.token_urlsafe(32), unbroken
    # The log line with the link stays (development).
    assert f"{running.base}/verify-email?token={token}" in running.log


def test_an_explicit_link_base_is_kept(tmp_path: Path) -> None:
    server = Serve(tmp_path, _free_port(), ATRIUM_MAIL__LINK_BASE_URL="https://app.example.com")
    try:
        server.wait_ready()
        r = httpx.post(
            f"{server.base}/api/v1/auth/register",
            json={"email": "ada@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        (eml,) = _wait_for_eml(tmp_path / "var" / "mail")
    finally:
        server.stop()

    assert b"https://app.example.com/verify-email?token=" in eml.read_bytes()


def test_granian_lines_are_json_when_the_log_is_json(tmp_path: Path) -> None:
    server = Serve(tmp_path, _free_port(), ATRIUM_LOG_FORMAT="json")
    try:
        server.wait_ready()
    finally:
        assert server.stop() == 0
    lines = [line for line in server.log.splitlines() if line.strip()]

    granian = [json.loads(line) for line in lines if "granian" in line.lower()]
    assert granian  # granian announced itself ("Starting granian", workers ...)
    for line in lines:
        json.loads(line)  # every line of the stream is JSON
