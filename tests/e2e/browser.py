"""Helpers of the browser tests: a real ``atrium serve`` process, Debian's Chromium driven
by Playwright, axe-core checks and screenshots.

Chromium is the system package (``apt-get install chromium``); Playwright's own browser
downloads are never used. axe-core comes from the npm package (``npm ci``).
"""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from tests.readiness import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
ATRIUM = str(Path(sys.executable).with_name("atrium"))
CHROMIUM = os.environ.get("ATRIUM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "a long admin passphrase"
PASSWORD = "correct horse battery staple"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20) -> T:
    """Poll ``probe`` every 0.1 s until it returns a value other than None (a bounded
    wait on another process); AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class AtriumServer:
    """``atrium serve`` on a free loopback port with a fresh SQLite file; emails are
    written as ``.eml`` files by the worker inside the API process."""

    def __init__(
        self, root: Path, *, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.root = root
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / "var"
        env = (
            {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
            | {
                "ATRIUM_DATA_DIR": str(self.data_dir),
                "ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB": "1024",
                "ATRIUM_AUTH__ARGON2_TIME_COST": "1",
                "ATRIUM_ADMIN_EMAIL": ADMIN_EMAIL,
                "ATRIUM_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "ATRIUM_MAIL__LINK_BASE_URL": self.base,
                "ATRIUM_MAIL__POLL_INTERVAL_SECONDS": "0.2",
                "ATRIUM_RATE_LIMIT__LOGIN": "1000/minute",
                "ATRIUM_RATE_LIMIT__REGISTRATION": "1000/minute",
                "ATRIUM_RATE_LIMIT__FORGOT_PASSWORD": "1000/minute",
            }
            | (env or {})
        )
        self.log = (root / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [ATRIUM, "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        if wait_until_ready(self.base, self.proc, 180):
            return
        if self.proc.poll() is not None:
            self.log.close()
            raise AssertionError((self.root / "server.log").read_text())
        self.stop()
        raise AssertionError("server not ready:\n" + (self.root / "server.log").read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        finally:
            self.log.close()

    def mail_to(self, address: str, subject_word: str, *, after: int = 0) -> Message:
        """The newest ``.eml`` to ``address`` whose subject contains ``subject_word``
        (waits for the outbox worker to write it)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = []
            for path in (self.data_dir / "mail").glob("*.eml"):
                message = email.message_from_bytes(path.read_bytes())
                if message["To"] == address and subject_word in message["Subject"]:
                    found.append((path.stat().st_mtime_ns, message))
            if len(found) > after:
                return sorted(found, key=lambda f: f[0])[-1][1]
            time.sleep(0.2)
        raise AssertionError(f"no mail '{subject_word}' to {address}")

    def link_in(self, message: Message, path: str) -> str:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                match = re.search(re.escape(self.base + path) + r"\?token=[\w-]+", payload.decode())
                if match:
                    return match.group(0)
        raise AssertionError(f"no {path} link in the message")


def check_accessibility(page: Any, name: str, shots: Path | None) -> None:
    """Run axe-core (WCAG 2.x A/AA rules) on the page: no serious or critical violation.
    axe is evaluated through the DevTools protocol, which the page's CSP does not govern,
    so the page keeps its real policy. Saves a screenshot when ``shots`` is set."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: "tag",
                      values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
            resultTypes: ["violations"]})"""
    )
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True, caret="initial")
