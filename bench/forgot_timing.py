"""Forgot-password timing: median answer time for a known and an unknown address.

Starts ``atrium serve`` (embedded SQLite, rate limits off) on a free port, registers one
account, then sends ``POST /api/v1/auth/password/forgot`` alternately for the known address
and for unknown ones, sequentially over one connection, and writes the medians and their
ratio into docs/benchmarks.md (between its own markers). Goal: ratio <= 1.1.

    uv run python bench/forgot_timing.py [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench/forgot_timing.py: generated section -->"
END = "<!-- end of forgot_timing section -->"
FORGOT = "/api/v1/auth/password/forgot"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
        "ATRIUM_DATA_DIR": str(workdir / "var"),
        "ATRIUM_RATE_LIMIT__ENABLED": "false",
        "ATRIUM_HTTP__ACCESS_LOG": "false",
        "ATRIUM_LOG_LEVEL": "warning",
        "ATRIUM_MAIL__WORKER_IN_API": "false",
    }
    log = (workdir / "server.log").open("wb")
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("atrium")), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("server not ready")


def measure(base: str, n: int) -> tuple[list[float], list[float]]:
    known: list[float] = []
    unknown: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post("/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
        for i in range(20):  # warm-up
            http.post(FORGOT, json={"email": f"warm{i}@example.com"})
        for i in range(n):
            is_known = i % 2 == 0
            email = "ada@example.com" if is_known else f"nobody{i}@example.com"
            t0 = time.perf_counter()
            response = http.post(FORGOT, json={"email": email})
            elapsed = time.perf_counter() - t0
            assert response.status_code == 202, response.text
            (known if is_known else unknown).append(elapsed)
    return known, unknown


def write(known: list[float], unknown: list[float]) -> float:
    mk, mu = statistics.median(known), statistics.median(unknown)
    ratio = mk / mu
    load = os.getloadavg()[0]
    section = (
        f"{START}\n\n"
        "## Forgot-password timing (known / unknown address)\n\n"
        f"`bench/forgot_timing.py`: {len(known)} requests each, alternating, sequential on "
        f"one connection, embedded SQLite, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, load average {load:.1f} "
        "at the end.\n\n"
        "| address | median | p90 |\n|---|---|---|\n"
        f"| known | {mk * 1000:.2f} ms | {statistics.quantiles(known, n=10)[-1] * 1000:.2f} ms |\n"
        f"| unknown | {mu * 1000:.2f} ms | "
        f"{statistics.quantiles(unknown, n=10)[-1] * 1000:.2f} ms |\n\n"
        f"Ratio of the medians: **{ratio:.3f}** (goal <= 1.1). The answer is sent after the "
        "rate limit only; the account lookup, token and outbox row follow the response.\n\n"
        f"{END}"
    )
    text = DOC.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = serve(Path(tmp), port)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc)
            known, unknown = measure(f"http://127.0.0.1:{port}", args.requests)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    ratio = write(known, unknown)
    print(f"known/unknown median ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
