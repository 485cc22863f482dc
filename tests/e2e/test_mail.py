"""End to end: the newcomer's email flows on the embedded default (``.eml`` files written by
the API process's background worker), and ``atrium worker`` as its own process over SMTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import wait_for
from tests.mailbox import SmtpSink, free_port, smtp_server, token_of
from tests.readiness import wait_until_ready

pytestmark = pytest.mark.e2e

__all__ = ["smtp_server"]

ATRIUM = str(Path(sys.executable).with_name("atrium"))
PASSWORD = "correct horse battery staple"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
        "ATRIUM_DATA_DIR": str(data_dir),
        "ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB": "1024",
        "ATRIUM_AUTH__ARGON2_TIME_COST": "1",
        "ATRIUM_MAIL__POLL_INTERVAL_SECONDS": "0.2",
        **extra,
    }


def _serve(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [ATRIUM, "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    if not wait_until_ready(base, proc, 30, request_timeout=1):
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "server.log").read_text())
        raise AssertionError("timed out waiting for the server")
    return proc, base


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "var"
    proc, base = _serve(tmp_path, _env(data_dir))
    yield base, data_dir / "mail"
    _stop(proc)


def _eml(mail_dir: Path, to: str, subject_part: str) -> EmailMessage | None:
    if not mail_dir.is_dir():
        return None
    for path in mail_dir.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == to and subject_part in str(message["Subject"]):
            return message
    return None


def _link(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return next(
        word
        for word in body.get_content().split()  # type: ignore[attr-defined]
        if word.startswith("http")
    )


def test_newcomer_verifies_and_resets_with_eml_files(embedded: tuple[str, Path]) -> None:
    base, mail_dir = embedded
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/api/v1/auth/register", json={"email": "new@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201
        verify = wait_for(
            "the verification .eml", lambda: _eml(mail_dir, "new@example.com", "Confirm your email")
        )
        token = token_of(_link(verify))
        assert http.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 204

        r = http.post("/api/v1/auth/password/forgot", json={"email": "new@example.com"})
        assert r.status_code == 202
        reset = wait_for("the reset .eml", lambda: _eml(mail_dir, "new@example.com", "Reset your"))
        r = http.post(
            "/api/v1/auth/password/reset",
            json={"token": token_of(_link(reset)), "new_password": "my second good passphrase"},
        )
        assert r.status_code == 204

        r = http.post(
            "/api/v1/auth/login",
            data={"username": "new@example.com", "password": "my second good passphrase"},
        )
        assert r.status_code == 200
        me = http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["email_verified"] is True
        wait_for(
            "the password-changed .eml",
            lambda: _eml(mail_dir, "new@example.com", "password was changed"),
        )


def test_worker_process_delivers_over_smtp_and_stops_on_sigterm(
    tmp_path: Path, smtp_server: SmtpSink
) -> None:
    env = _env(
        tmp_path / "var",
        ATRIUM_MAIL__WORKER_IN_API="false",
        ATRIUM_MAIL__SMTP_HOST="127.0.0.1",
        ATRIUM_MAIL__SMTP_PORT=str(smtp_server.port),
        ATRIUM_MAIL__SMTP_SECURITY="none",
        ATRIUM_MAIL__SMTP_TIMEOUT_SECONDS="5",
    )
    api, base = _serve(tmp_path, env)
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for i in range(3):
                r = http.post(
                    "/api/v1/auth/register",
                    json={"email": f"u{i}@example.com", "password": PASSWORD},
                )
                assert r.status_code == 201
        status = subprocess.run(
            [ATRIUM, "mail", "status"], env=env, cwd=tmp_path, capture_output=True, check=True
        )
        assert b"pending  3" in status.stdout  # the API process does not send
        assert smtp_server.received == []

        worker = subprocess.Popen(
            [ATRIUM, "worker"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for("3 messages", lambda: len(smtp_server.received) == 3 or None)
        finally:
            assert _stop(worker) == 0
        assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
            "u0@example.com",
            "u1@example.com",
            "u2@example.com",
        ]
        status = subprocess.run(
            [ATRIUM, "mail", "status"], env=env, cwd=tmp_path, capture_output=True, check=True
        )
        assert b"sent     3" in status.stdout
        [mail] = smtp_server.to("u0@example.com")
        with httpx.Client(base_url=base, timeout=10) as http:
            r = http.post("/api/v1/auth/verify-email", json={"token": mail.token})
            assert r.status_code == 204
    finally:
        _stop(api)
