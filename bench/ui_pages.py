"""Benchmarks of the hosted pages, written into ``docs/benchmarks.md``:

``admin``: the admin console's users page (``GET /admin/users``) at N users (default
1,000,000) in a scratch PostgreSQL database, signed in with the browser cookie, through
the whole application in-process (cookie session, permission check, the admin service's
queries, template rendering). Target: p95 under 80 ms for every row.

    uv run python bench/ui_pages.py admin --users 1000000
    uv run python bench/ui_pages.py admin --existing postgresql+asyncpg://…/seeded_db

``login``: requests per second of the sign-in page (``GET /login``: template, CSRF cookie)
against the API's hello (``GET /health/live``), both served by ``atrium serve`` on the
embedded default and driven by wrk on loopback.

    uv run python bench/ui_pages.py login
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import Any

import doc_section
import httpx
from admin_search import _cpu, _existing, _pct, _pg_version, _server, bench_database

from atrium import migrate
from atrium.bootstrap import ensure_admin
from atrium.config import AuthSettings, DatabaseSettings, Environment, Settings
from atrium.main import create_app
from atrium.seed import seed

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
ADMIN_SECTION = "## Admin users page at 1,000,000 users"
LOGIN_SECTION = "## Sign-in page against the API's hello"
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench admin passphrase 1"
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')

SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("first page, newest first (default)", {}),
    ("q=lovelace (surname, ~1 % of rows)", {"q": "lovelace"}),
    ("q=hopper4242 (rare: a few rows)", {"q": "hopper4242"}),
    ("q=corp.example (email domain, ~20 % of rows)", {"q": "corp.example"}),
    ("status=suspended (~2 %)", {"status": "suspended"}),
    ("role=moderator (~0.5 %)", {"role": "moderator"}),
    ("role=moderator & sort=email", {"role": "moderator", "sort": "email"}),
    ("role=user & status=suspended", {"role": "user", "status": "suspended"}),
    ("email_verified=no", {"email_verified": "no"}),
    ("sort=email", {"sort": "email"}),
    ("sort=-last_login_at", {"sort": "-last_login_at"}),
]


def write_section(title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, title, body)


async def _time_page(
    client: httpx.AsyncClient, params: dict[str, Any], n: int, api_headers: dict[str, str]
) -> tuple[list[float], list[float], str | None]:
    """``n`` timings of the console page and, interleaved with them (same load), ``n`` of
    the admin API call it wraps (``GET /api/v1/admin/users``, bearer token, JSON)."""
    for _ in range(3):
        r = await client.get("/admin/users", params=params)
        assert r.status_code == 200, r.text[:500]
        r = await client.get("/api/v1/admin/users", params=params, headers=api_headers)
        assert r.status_code == 200, r.text[:500]
    page, api = [], []
    cursor = None
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get("/admin/users", params=params)
        page.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
        match = re.search(r"cursor=([^\"&]+)\" rel=\"next\"", r.text)
        cursor = match.group(1) if match else None
        t = time.perf_counter()
        r = await client.get("/api/v1/admin/users", params=params, headers=api_headers)
        api.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    return page, api, cursor


async def admin(args: argparse.Namespace) -> None:
    url, name = await bench_database(args)
    rows: list[tuple[str, list[float], list[float]]] = []
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment=Environment.test,
            data_dir=Path(args.data_dir),
            database=DatabaseSettings(url=url, auto_migrate=False, pool_size=5),
            auth=AuthSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1),
        )
        if args.existing:
            result = await _existing(url, 0.0)
        else:
            print(f"seeding {args.users} users into {name} ...", file=sys.stderr)
            result = await seed(settings, args.users)
        await ensure_admin(settings, ADMIN_EMAIL, ADMIN_PASSWORD)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
                token = TOKEN.search((await client.get("/login")).text)
                assert token
                signed = await client.post(
                    "/login",
                    data={
                        "email": ADMIN_EMAIL,
                        "password": ADMIN_PASSWORD,
                        "csrf_token": token.group(1),
                    },
                )
                assert signed.status_code == 303, signed.text[:500]
                login = await client.post(
                    "/api/v1/auth/login",
                    data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                )
                assert login.status_code == 200, login.text[:500]
                bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
                load = os.getloadavg()[0]
                for label, extra in SCENARIOS:
                    params = {"limit": 50, **extra}
                    page, api, cursor = await _time_page(client, params, args.iterations, bearer)
                    rows.append((label, page, api))
                    print(f"{label}: p95 {_pct(page, 95):.1f} ms", file=sys.stderr)
                    if extra == {} and cursor:
                        deeper, deeper_api, _ = await _time_page(
                            client, {**params, "cursor": cursor}, args.iterations, bearer
                        )
                        rows.append(("second page (cursor)", deeper, deeper_api))
    finally:
        if not args.keep and not args.existing:
            await _server(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_version = await _pg_version(args.server)
    worst = max(_pct(s, 95) for _, s, _ in rows)
    ratios = [_pct(s, 50) / _pct(a, 50) for _, s, a in rows]
    lines = [
        ADMIN_SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/ui_pages.py "
        f"admin --users {result.users}`: {_cpu()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {pg_version}. Load average (1 min) when the timed "
        f"requests began: {load:.2f}.",
        "",
        "Each row: `GET /admin/users?limit=50&…` signed in with the browser cookie, through "
        "the whole application in-process (the cookie's session from the principal cache, "
        "as an access token's; permissions; the header's unread count; the admin "
        f"service's two queries; HTML rendering), {args.iterations} timed requests after 3 "
        "warm-up requests, each followed by the admin API call it wraps "
        "(`GET /api/v1/admin/users`, same filters, bearer token): the page / API ratio of "
        "the medians holds whatever the machine's load; the absolute times do not.",
        "",
        "| query | page p50 (ms) | page p95 (ms) | API p50 (ms) | page / API (p50) |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {label} | {_pct(s, 50):.1f} | {_pct(s, 95):.1f} | {_pct(a, 50):.1f} | "
            f"{_pct(s, 50) / _pct(a, 50):.2f} |"
            for label, s, a in rows
        ],
        "",
        f"Worst page p95: {worst:.1f} ms (target: under 80 ms"
        f"{'' if load < 1.5 else '; this run was on a loaded machine'}). "
        f"Page / API ratio of the medians: {min(ratios):.2f}–{max(ratios):.2f} "
        "(goal: about 1, the page costs what the API call costs).",
    ]
    write_section(ADMIN_SECTION, "\n".join(lines))
    print(f"written to {DOC}", file=sys.stderr)


def _wrk(url: str, duration: float, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def login(args: argparse.Namespace) -> None:
    assert shutil.which("wrk"), "wrk is needed (apt-get install wrk)"
    atrium = str(Path(sys.executable).with_name("atrium"))
    with tempfile.TemporaryDirectory() as tmp:
        port = args.port
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")} | {
            "ATRIUM_DATA_DIR": str(Path(tmp) / "var"),
            "ATRIUM_HTTP__ACCESS_LOG": "false",
            "ATRIUM_LOG_LEVEL": "warning",
        }
        proc = subprocess.Popen(
            [atrium, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            results: dict[str, list[float]] = {"hello": [], "login": []}
            for _ in range(args.runs):
                results["hello"].append(_wrk(f"{base}/health/live", args.duration, 32))
                results["login"].append(_wrk(f"{base}/login", args.duration, 32))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    hello = sorted(results["hello"])[len(results["hello"]) // 2]
    page = sorted(results["login"])[len(results["login"]) // 2]
    lines = [
        LOGIN_SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/ui_pages.py "
        f"login`: {_cpu()}, {os.cpu_count()} cores, `atrium serve` on the embedded default, "
        f"wrk with 32 connections, {args.duration:.0f} s per run, median of {args.runs} runs; "
        f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "| route | req/s |",
        "|---|---:|",
        f"| `GET /health/live` (hello) | {hello:,.0f} |",
        f"| `GET /login` (template, CSRF cookie, headers) | {page:,.0f} |",
        "",
        f"The sign-in page serves {page / hello:.2f}× the hello rate.",
    ]
    write_section(LOGIN_SECTION, "\n".join(lines))
    print(f"written to {DOC}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("admin")
    a.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    a.add_argument("--users", type=int, default=1_000_000)
    a.add_argument("--existing", help="URL of a database already seeded with `atrium seed`")
    a.add_argument("--iterations", type=int, default=50)
    a.add_argument("--keep", action="store_true")
    a.add_argument("--data-dir", default=str(ROOT / ".bench" / "ui"))
    b = sub.add_parser("login")
    b.add_argument("--port", type=int, default=8765)
    b.add_argument("--duration", type=float, default=5.0)
    b.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.what == "admin":
        asyncio.run(admin(args))
    else:
        login(args)


if __name__ == "__main__":
    main()
