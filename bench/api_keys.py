"""Benchmark: an authenticated ``GET /api/v1/users/me`` with an API key against the same
with a JWT access token, written into ``docs/benchmarks.md``. Target: the key's rate
at least 0.9 times the token's (issue 13).

Both run against one ``atrium serve`` (embedded default, or PostgreSQL and Redis with
``--database``/``--redis``), driven by wrk on loopback, alternating key and token runs so
that drift on a shared machine hits both alike; the median of ``--runs`` runs each.

    uv run python bench/api_keys.py
    uv run python bench/api_keys.py --database postgresql+asyncpg://… --redis redis://…
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import doc_section
import httpx

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## API key against access token: authenticated GET /users/me"
EMAIL = "bench-keys@example.com"
PASSWORD = "bench key passphrase 1"  # nosec B105


def write_section(title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, title, body)


def wrk(url: str, authorization: str, duration: float, connections: int) -> float:
    """Requests per second of ``GET url`` with the header, all 2xx or the run fails."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "-H",
            f"Authorization: Bearer {authorization}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Non-2xx" not in out, out
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def credentials(base: str) -> tuple[str, str]:
    """Register the bench account, log in, create a key: (access token, API key)."""
    api = f"{base}/api/v1"
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{api}/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code in (201, 409), r.text
        r = client.post(f"{api}/auth/login", data={"username": EMAIL, "password": PASSWORD})
        assert r.status_code == 200, r.text
        access = r.json()["access_token"]
        r = client.post(
            f"{api}/users/me/api-keys",
            headers={"Authorization": f"Bearer {access}"},
            json={"name": "bench", "scopes": [], "expires_in_days": 1},
        )
        assert r.status_code == 201, r.text
        return access, r.json()["key"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", help="PostgreSQL URL (default: the embedded SQLite)")
    parser.add_argument("--redis", help="Redis URL (default: the in-process cache)")
    args = parser.parse_args()
    assert shutil.which("wrk"), "wrk is needed (apt-get install wrk)"
    atrium = str(Path(sys.executable).with_name("atrium"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
            "ATRIUM_DATA_DIR": str(Path(tmp) / "var"),
            "ATRIUM_HTTP__ACCESS_LOG": "false",
            "ATRIUM_LOG_LEVEL": "warning",
            # The bench account registers and logs in from one address.
            "ATRIUM_RATE_LIMIT__REGISTRATION": "1000/minute",
        }
        if args.database:
            env["ATRIUM_DATABASE__URL"] = args.database
        if args.redis:
            env["ATRIUM_REDIS__URL"] = args.redis
            env["ATRIUM_REDIS__KEY_PREFIX"] = f"atrium-bench-{os.getpid()}:"
        proc = subprocess.Popen(
            [atrium, "serve", "--port", str(args.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )
        base = f"http://127.0.0.1:{args.port}"
        url = f"{base}/api/v1/users/me"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            access, key = credentials(base)
            wrk(url, access, 1, args.connections)  # warm-up
            wrk(url, key, 1, args.connections)
            token_runs: list[float] = []
            key_runs: list[float] = []
            for _ in range(args.runs):
                token_runs.append(wrk(url, access, args.duration, args.connections))
                key_runs.append(wrk(url, key, args.duration, args.connections))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    token = sorted(token_runs)[len(token_runs) // 2]
    keyed = sorted(key_runs)[len(key_runs) // 2]
    ratio = keyed / token
    backend = "PostgreSQL" if args.database else "SQLite"
    cache = "Redis" if args.redis else "the in-process cache"
    lines = [
        SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/api_keys.py"
        f"{' --database … --redis …' if args.database else ''}`: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, one `atrium serve` on {backend} with {cache}, wrk with "
        f"{args.connections} connections, {args.duration:.0f} s per run, key and token runs "
        f"alternating, median of {args.runs} each; load average (1 min) at the end: "
        f"{os.getloadavg()[0]:.2f}.",
        "",
        "| credential | req/s (median) | runs |",
        "|---|---:|---|",
        f"| JWT access token | {token:,.0f} | {', '.join(f'{r:,.0f}' for r in token_runs)} |",
        f"| API key (`atr_pat_…`) | {keyed:,.0f} | {', '.join(f'{r:,.0f}' for r in key_runs)} |",
        "",
        f"Ratio key / token: **{ratio:.2f}×** (target ≥ 0.9×: "
        f"{'met' if ratio >= 0.9 else 'not met'}).",
    ]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
