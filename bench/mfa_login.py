"""MFA login throughput (password + TOTP, password + passkey) against password login and
the hash limit.

Starts ``atrium serve`` (1 worker, embedded SQLite, rate limits off) on a free port,
creates accounts with a TOTP factor (their email marked verified in the database), then
for ``--duration`` seconds keeps ``--connections`` clients logging in: ``POST
/auth/login`` answers 401 ``mfa_required`` and ``POST /auth/mfa/verify`` with the pyotp
code finishes it. A TOTP code works once per account and 30-second step, so every MFA
login uses an account not yet used in the run. The same run measures password-only
logins (accounts without MFA) and one argon2id hash with the server's parameters: the
machine's hash limit is ``cores / hash time``. Both logins cost one password hash; the
MFA login adds a request, the challenge row and the TOTP check. The passkey as second
factor adds two requests (options, then ``/auth/mfa/verify`` with the assertion, made by
the tests' software authenticator: an ECDSA P-256 signature verified, the counter moved);
a passkey can be used again (its counter grows), so those accounts are reused. The result
is written into docs/benchmarks.md between its markers.

    uv run python bench/mfa_login.py [--duration 10] [--connections 4] [--accounts 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyotp

# Run as a script: bench/ is on sys.path.
from forgot_timing import free_port, serve, wait_ready  # type: ignore[import-not-found]

from atrium.config import AuthSettings
from atrium.core.passwords import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.passkeys.authenticator import SoftAuthenticator

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench/mfa_login.py: generated section -->"
END = "<!-- end of mfa_login section -->"
PASSWORD = "correct horse battery staple"
API = "/api/v1"


async def create_accounts(
    base: str, db: Path, n: int, prefix: str, mfa: bool
) -> list[tuple[str, str]]:
    """``n`` accounts (email, TOTP secret or ""), created through the API."""
    emails = [f"{prefix}{i}@example.com" for i in range(n)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        # One at a time: the embedded SQLite serialises writers (a busy machine times out).
        sem = asyncio.Semaphore(1)

        async def register(email: str) -> None:
            async with sem:
                r = await http.post(
                    f"{API}/auth/register", json={"email": email, "password": PASSWORD}
                )
                assert r.status_code == 201, r.text

        await asyncio.gather(*(register(e) for e in emails))
        if not mfa:
            return [(e, "") for e in emails]
        with sqlite3.connect(db) as conn:  # enrolment needs a verified email
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute("UPDATE user_account SET email_verified_at = ?", (now,))

        async def enrol(email: str) -> tuple[str, str]:
            async with sem:
                r = await http.post(
                    f"{API}/auth/login", data={"username": email, "password": PASSWORD}
                )
                assert r.status_code == 200, r.text
                access = {"Authorization": f"Bearer {r.json()['access_token']}"}
                r = await http.post(f"{API}/users/me/mfa/totp", json={}, headers=access)
                factor, secret = r.json()["factor_id"], r.json()["secret"]
                # The previous step's code: the measured login takes the current one.
                code = pyotp.TOTP(secret).at(time.time(), counter_offset=-1)
                r = await http.post(
                    f"{API}/users/me/mfa/totp/{factor}/verify", json={"code": code}, headers=access
                )
                assert r.status_code == 200, r.text
                return email, secret

        return list(await asyncio.gather(*(enrol(e) for e in emails)))


async def create_passkey_accounts(
    base: str, db: Path, n: int
) -> list[tuple[str, SoftAuthenticator]]:
    """``n`` accounts whose only factor is a passkey of a software authenticator (the
    server's relying party: RP id 127.0.0.1, its own address as the origin)."""
    emails = [f"pk{i}@example.com" for i in range(n)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for email in emails:
            r = await http.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
        with sqlite3.connect(db) as conn:  # enrolment needs a verified email
            now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute("UPDATE user_account SET email_verified_at = ?", (now,))
        out = []
        for email in emails:
            r = await http.post(f"{API}/auth/login", data={"username": email, "password": PASSWORD})
            access = {"Authorization": f"Bearer {r.json()['access_token']}"}
            authenticator = SoftAuthenticator(origin=base, rp_id="127.0.0.1")
            r = await http.post(f"{API}/users/me/passkeys/registration/options", headers=access)
            assert r.status_code == 200, r.text
            r = await http.post(
                f"{API}/users/me/passkeys/registration",
                json={"credential": authenticator.create(r.json()), "name": "bench"},
                headers=access,
            )
            assert r.status_code == 201, r.text
            out.append((email, authenticator))
        return out


async def drive_passkeys(
    base: str, accounts: list[tuple[str, SoftAuthenticator]], seconds: float
) -> tuple[int, list[float]]:
    """Password + passkey logins completed in ``seconds`` (one chain per account)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def chain(email: str, authenticator: SoftAuthenticator) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = await http.post(
                    f"{API}/auth/login", data={"username": email, "password": PASSWORD}
                )
                assert r.status_code == 401, r.text
                token = r.json()["mfa_token"]
                r = await http.post(f"{API}/auth/mfa/webauthn/options", json={"mfa_token": token})
                assert r.status_code == 200, r.text
                assertion = authenticator.get(r.json()["public_key"])
                r = await http.post(
                    f"{API}/auth/mfa/verify", json={"mfa_token": token, "webauthn": assertion}
                )
                assert r.status_code == 200, r.text
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(chain(e, a) for e, a in accounts))
    return len(latencies), latencies


async def drive(
    base: str, accounts: list[tuple[str, str]], seconds: float, connections: int
) -> tuple[int, list[float]]:
    """Logins completed in ``seconds`` and their latencies (s)."""
    pending = list(accounts)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while time.monotonic() < deadline and pending:
                email, secret = pending.pop()
                t0 = time.perf_counter()
                r = await http.post(
                    f"{API}/auth/login", data={"username": email, "password": PASSWORD}
                )
                if secret:
                    assert r.status_code == 401, r.text
                    r = await http.post(
                        f"{API}/auth/mfa/verify",
                        json={"mfa_token": r.json()["mfa_token"], "code": pyotp.TOTP(secret).now()},
                    )
                assert r.status_code == 200, r.text
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client() for _ in range(connections)))
    if not pending:
        raise SystemExit("ran out of accounts: raise --accounts")
    return len(latencies), latencies


def hash_seconds() -> float:
    hasher = PasswordHasher(AuthSettings())
    hasher.hash_sync(PASSWORD)
    t0 = time.perf_counter()
    for _ in range(10):
        hasher.hash_sync(PASSWORD)
    return (time.perf_counter() - t0) / 10


def write(
    rows: dict[str, tuple[float, list[float]]],
    limit: float,
    hash_s: float,
    args: argparse.Namespace,
) -> None:
    mfa_rate, pwd_rate = rows["password + TOTP"][0], rows["password only"][0]
    passkey_rate = rows["password + passkey"][0]
    lines = [
        f"{START}\n",
        "## MFA login (password + TOTP or passkey) against the hash limit\n",
        f"`bench/mfa_login.py --duration {args.duration} --connections {args.connections}`, run on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `atrium serve` (1 worker, embedded SQLite, rate "
        f"limits off), {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end. One argon2id "
        f"hash (19 MiB, t=2) takes {hash_s * 1000:.1f} ms here: the machine's limit is "
        f"{os.cpu_count()} / {hash_s * 1000:.1f} ms = {limit:.1f} logins/s.\n",
        "| login | logins/s | p50 ms | p90 ms | / hash limit |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (rate, lat) in rows.items():
        q = statistics.quantiles(lat, n=10)
        lines.append(
            f"| {name} | {rate:.1f} | {statistics.median(lat) * 1000:.0f} | {q[-1] * 1000:.0f} | "
            f"{rate / limit:.2f}× |"
        )
    lines.append(
        f"\nMFA login / password login: **{mfa_rate / pwd_rate:.2f}×** with TOTP, "
        f"**{passkey_rate / pwd_rate:.2f}×** with a passkey as the second factor. All are bound "
        "by the one password hash; the second request, the challenge row and the TOTP check "
        "are the difference (a passkey adds a third request, its challenge row and an ECDSA "
        "P-256 verification). Small scale on a shared machine: read the ratios, not the "
        "absolute rates.\n"
    )
    lines.append(END)
    section = "\n".join(lines)
    text = DOC.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=400)
    args = parser.parse_args()
    hash_s = hash_seconds()
    limit = (os.cpu_count() or 1) / hash_s
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = serve(Path(tmp), port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, proc)
            db = Path(tmp) / "var" / "atrium.db"
            plain = asyncio.run(create_accounts(base, db, args.accounts, "pwd", mfa=False))
            with_mfa = asyncio.run(create_accounts(base, db, args.accounts, "mfa", mfa=True))
            with_passkey = asyncio.run(create_passkey_accounts(base, db, args.connections))
            rows = {}
            for name, accounts in (("password only", plain), ("password + TOTP", with_mfa)):
                done, lat = asyncio.run(drive(base, accounts, args.duration, args.connections))
                rows[name] = (done / args.duration, lat)
            done, lat = asyncio.run(drive_passkeys(base, with_passkey, args.duration))
            rows["password + passkey"] = (done / args.duration, lat)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    write(rows, limit, hash_s, args)
    for name, (rate, _) in rows.items():
        print(f"{name}: {rate:.1f} logins/s (hash limit {limit:.1f}/s)")


if __name__ == "__main__":
    main()
