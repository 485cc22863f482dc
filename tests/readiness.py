"""Waiting for an Atrium server a test started: ``GET /health/ready`` until it answers 200."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx


def wait_until_ready(
    base: str, proc: subprocess.Popen[Any], timeout: float, *, request_timeout: float = 2
) -> bool:
    """Poll ``{base}/health/ready`` every 0.1 s until it answers 200 (True), ``proc`` exits
    or ``timeout`` seconds pass (False; ``proc.poll()`` tells which of the two).

    One HTTP client serves every poll: a new httpx client loads the CA bundle (~16 ms of
    CPU), which ``httpx.get`` does on each call."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=request_timeout) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if http.get(f"{base}/health/ready").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False
