"""Benchmark: passwordless sign-in with a passkey against refresh-token rotation,
written into ``docs/benchmarks.md`` (issue 13: passkey login throughput, which hashes no
password, against the refresh throughput).

Both run in-process through the whole application (``httpx.ASGITransport``: middleware,
routing, the services, SQLite or PostgreSQL), ``--concurrency`` chains at once, for
``--seconds`` each, alternating, median of ``--runs``. A passkey sign-in is two requests
(options, then the assertion: a challenge stored and claimed, an ECDSA P-256 signature
verified, the counter moved, a session opened); a refresh is one (a token claimed, a new
pair). The assertions are made by the tests' software authenticator.

    uv run python bench/passkeys.py
    uv run python bench/passkeys.py --database postgresql+asyncpg://…/scratch_db
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import doc_section  # noqa: E402
from tests.passkeys.authenticator import SoftAuthenticator  # noqa: E402

from atrium import migrate  # noqa: E402
from atrium.config import (  # noqa: E402
    AuthSettings,
    DatabaseSettings,
    Environment,
    RateLimitSettings,
    Settings,
)
from atrium.main import create_app  # noqa: E402
from atrium.models import User  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Passkey sign-in against refresh"
PASSWORD = "bench passkey passphrase 1"  # nosec B105


def write_section(title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    doc_section.write_section(DOC, title, body)


async def _account(client: httpx.AsyncClient, app: Any, n: int) -> tuple[str, SoftAuthenticator]:
    """An account with a passkey: its refresh token and its authenticator. Its email is
    marked verified first (a passkey is a second factor: enrolling one needs it)."""
    email = f"bench-passkey-{n}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    ctx = app.state.ctx
    async with ctx.sessionmaker() as db:
        await db.execute(
            update(User)
            .where(User.id == uuid.UUID(r.json()["id"]))
            .values(email_verified_at=ctx.clock.now())
        )
        await db.commit()
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    tokens = r.json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    authenticator = SoftAuthenticator()
    options = await client.post("/api/v1/users/me/passkeys/registration/options", headers=auth)
    credential = authenticator.create(options.json())
    r = await client.post(
        "/api/v1/users/me/passkeys/registration",
        headers=auth,
        json={"credential": credential, "name": "bench"},
    )
    assert r.status_code == 201, r.text
    return tokens["refresh_token"], authenticator


async def _passkey_chain(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, until: float
) -> int:
    done = 0
    while time.perf_counter() < until:
        r = await client.post("/api/v1/auth/passkey/options", json={})
        options = r.json()
        credential = authenticator.get(options["public_key"])
        r = await client.post(
            "/api/v1/auth/passkey/login",
            json={"challenge_id": options["challenge_id"], "credential": credential},
        )
        assert r.status_code == 200, r.text
        done += 1
    return done


async def _refresh_chain(client: httpx.AsyncClient, token: list[str], until: float) -> int:
    done = 0
    while time.perf_counter() < until:
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": token[0]})
        assert r.status_code == 200, r.text
        token[0] = r.json()["refresh_token"]
        done += 1
    return done


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment=Environment.development,
            data_dir=Path(tmp) / "var",
            database=DatabaseSettings(url=url, auto_migrate=False),
            auth=AuthSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1),
            rate_limit=RateLimitSettings(
                login="1000000/minute", refresh="1000000/minute", registration="1000/minute"
            ),
            log_level="warning",
            gc_freeze=False,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                accounts = [await _account(c, app, n) for n in range(args.concurrency)]
                rates: dict[str, list[float]] = {"passkey": [], "refresh": []}
                tokens = [[t] for t, _ in accounts]
                for _ in range(args.runs):
                    until = time.perf_counter() + args.seconds
                    counts = await asyncio.gather(
                        *(_passkey_chain(c, a, until) for _, a in accounts)
                    )
                    rates["passkey"].append(sum(counts) / args.seconds)
                    until = time.perf_counter() + args.seconds
                    counts = await asyncio.gather(*(_refresh_chain(c, t, until) for t in tokens))
                    rates["refresh"].append(sum(counts) / args.seconds)
        return {"rates": rates, "backend": "PostgreSQL" if args.database else "SQLite"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database", help="a scratch PostgreSQL database (default: SQLite)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    rates = result["rates"]
    passkey = sorted(rates["passkey"])[len(rates["passkey"]) // 2]
    refresh = sorted(rates["refresh"])[len(rates["refresh"]) // 2]
    lines = [
        SECTION,
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `uv run python bench/passkeys.py "
        f"--seconds {args.seconds:g} --runs {args.runs}`: {platform.machine()}, "
        f"{os.cpu_count()} cores, in-process through the whole application on "
        f"{result['backend']} with the in-process cache, {args.concurrency} chains at once, "
        f"alternating, median of {args.runs}; load average (1 min) at the end: "
        f"{os.getloadavg()[0]:.2f}.",
        "",
        "| operation | per second (median) | runs |",
        "|---|---:|---|",
        f"| passkey sign-in (options + assertion) | {passkey:,.1f} | "
        f"{', '.join(f'{r:,.1f}' for r in rates['passkey'])} |",
        f"| refresh (rotation) | {refresh:,.1f} | "
        f"{', '.join(f'{r:,.1f}' for r in rates['refresh'])} |",
        "",
        f"Ratio passkey sign-in / refresh: **{passkey / refresh:.2f}×** (a sign-in is two "
        "requests, one signature verification and a new session; no password hash).",
    ]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
