"""Atrium beside the fastapi-users reference peer and beside the hardware's limit, in one run.

Usage: ``make bench`` (or ``uv run python bench/run.py [--duration 5] [--runs 3]``).

Starts Atrium (``atrium serve``, 1 worker, PostgreSQL + Redis) and the fastapi-users peer
from ``../shared/anchors/fastapi_users`` (same PostgreSQL, its own database), drives both
with wrk (1 thread, same connection count and duration), takes the median of ``--runs``
runs after a warm-up, and rewrites ``docs/benchmarks.md``. Absolute numbers vary between
machines and runs; the ratios measured in one run are the result.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEER_DIR = (ROOT / ".." / "shared" / "anchors" / "fastapi_users").resolve()
PEER_VENV = ROOT / ".bench" / "peer-venv"
PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/2")
ATRIUM_PORT, PEER_PORT = 8201, 8101
# Extra server settings for experiments, e.g. BENCH_ATRIUM_ENV="ATRIUM_HTTP__ACCESS_LOG=false".
BENCH_ENV = dict(
    item.split("=", 1) for item in os.environ.get("BENCH_ATRIUM_ENV", "").split() if "=" in item
)
PASSWORD = "correct horse battery staple"
CONNECTIONS = 32
LOGIN_CONNECTIONS = 4


# ---------------------------------------------------------------- processes and set-up

# Every process the benchmark starts (servers, wrk), stopped on every way out: a normal
# end, an exception, Ctrl-C, SIGTERM or SIGHUP. A server left running would hold its port,
# and the next run's server would share it (granian listens with SO_REUSEPORT).
_CHILDREN: list[subprocess.Popen[Any]] = []


def launch(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a child in a process group of its own (a server's workers included) and
    register it to be stopped when the benchmark exits."""
    proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
    _CHILDREN.append(proc)
    return proc


def stop_process(proc: subprocess.Popen[Any], grace_seconds: float = 15) -> None:
    """SIGTERM to the child's process group (its workers too), SIGKILL after
    ``grace_seconds``. A child that already ended is left alone (its id may be reused)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        pass
    # Whatever of the group outlived its leader (a worker, a child that ignores SIGINT):
    # the group id stays reserved while a member lives, so this reaches only them.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_all() -> None:
    """Stop every child still running, the most recent first."""
    while _CHILDREN:
        stop_process(_CHILDREN.pop())


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: finally blocks and atexit run


def install_cleanup() -> None:
    """Stop the children at exit, and turn SIGTERM/SIGHUP into an orderly exit."""
    atexit.register(stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG_SERVER}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
    )


def fresh_database(name: str) -> str:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not (PEER_VENV / "bin" / "uvicorn").exists():
        print("installing the fastapi-users peer into .bench/peer-venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "fastapi-users[sqlalchemy]",
                "asyncpg",
                "uvicorn[standard]",
            ],
            check=True,
        )
    return PEER_VENV / "bin" / "uvicorn"


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    log: Any

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc in _CHILDREN:
            _CHILDREN.remove(self.proc)
        self.log.close()

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")


def wait_ready(
    base: str,
    path: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float = 60,
    interval: float = 0.2,
) -> None:
    """Poll ``base + path`` every ``interval`` seconds until it answers 200; exit with the
    end of the server's log when it stops or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(interval)
    raise SystemExit(f"server not ready:\n{log_path.read_text()[-3000:]}")


def start_atrium(workdir: Path, db_url: str, run_id: str) -> Server:
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
        | {
            "ATRIUM_ENVIRONMENT": "development",
            "ATRIUM_DATABASE__URL": db_url,
            "ATRIUM_REDIS__URL": REDIS_URL,
            "ATRIUM_REDIS__KEY_PREFIX": f"bench:{run_id}:",
            "ATRIUM_DATA_DIR": str(workdir / "atrium"),
            "ATRIUM_LOG_LEVEL": "warning",
            "ATRIUM_DATABASE__POOL_SIZE": "20",
            # The load comes from one address: per-IP limits and login throttling would turn
            # it into 429s. Everything else (access log, metrics, headers) stays as shipped.
            "ATRIUM_RATE_LIMIT__ENABLED": "false",
            # Outbox delivery writes .eml files for every registration; keep it out of the
            # request path measurement (it runs in `atrium worker` in production).
            "ATRIUM_MAIL__WORKER_IN_API": "false",
        }
        | BENCH_ENV
    )
    log_path = workdir / "atrium.log"
    log = log_path.open("wb")
    proc = launch(
        [str(Path(sys.executable).with_name("atrium")), "serve", "--port", str(ATRIUM_PORT)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{ATRIUM_PORT}"
    wait_ready(base, "/health/ready", proc, log_path)
    return Server("atrium", base, proc, log)


def start_peer(workdir: Path, db_url: str) -> Server:
    uvicorn = ensure_peer_venv()
    log_path = workdir / "peer.log"
    log = log_path.open("wb")
    proc = launch(
        [str(uvicorn), "app:app", "--port", str(PEER_PORT), "--log-level", "warning"],
        cwd=PEER_DIR,
        env=os.environ | {"DATABASE_URL": db_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{PEER_PORT}"
    wait_ready(base, "/health", proc, log_path)
    return Server("fastapi-users", base, proc, log)


# ---------------------------------------------------------------- wrk


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    @staticmethod
    def median(results: list[Result]) -> Result:
        return Result(
            rps=statistics.median(r.rps for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
        )


def lua_section(name: str) -> str:
    text = (BENCH / "scenarios.lua").read_text()
    match = re.search(rf"--@@ {name}\n(.*?)(?=\n--@@ |\Z)", text, re.S)
    assert match, name
    return match.group(1)


def script(body: str, tmp: Path) -> Path:
    path = tmp / f"wrk-{uuid.uuid4().hex}.lua"
    path.write_text(body + "\n" + (BENCH / "wrk_report.lua").read_text())
    return path


def static_request(method: str, body: str = "", headers: dict[str, str] | None = None) -> str:
    lines = [f'wrk.method = "{method}"']
    if body:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for key, value in (headers or {}).items():
        lines.append(f'wrk.headers["{key}"] = "{value}"')
    return "\n".join(lines)


def wrk_start(
    url: str, lua: Path, connections: int, duration: float, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return launch(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | (env or {}),
    )


def wrk_result(proc: subprocess.Popen[str]) -> Result:
    out, _ = proc.communicate()
    match = re.search(r"WRK_JSON (\{.*\})", out)
    if not match:
        raise SystemExit(f"wrk failed:\n{out}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    return Result(
        rps=data["requests"] / seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
    )


def wrk(
    url: str, lua: Path, connections: int, duration: float, env: dict[str, str] | None = None
) -> Result:
    return wrk_result(wrk_start(url, lua, connections, duration, env))


# ---------------------------------------------------------------- measurements


def hash_verify_seconds() -> float:
    """Median time of one argon2id verify at Atrium's default parameters, one thread."""
    from atrium.config import AuthSettings
    from atrium.core.passwords import PasswordHasher

    hasher = PasswordHasher(AuthSettings())
    stored = hasher.hash_sync(PASSWORD)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        hasher.verify_sync(PASSWORD, stored)
        times.append(time.perf_counter() - start)
    hasher.close()
    return statistics.median(times)


def server_cores() -> int:
    return len(os.sched_getaffinity(0))


def register_and_login(base: str, system: str, email: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=30) as http:
        if system == "atrium":
            http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
            r = http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
        else:
            http.post("/auth/register", json={"email": email, "password": PASSWORD})
            r = http.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body


def count_statements(db_url: str, workdir: Path) -> dict[str, int]:
    """SQL statements per request for me (cold and warm cache), login and refresh."""
    from sqlalchemy import event

    from atrium.config import (
        DatabaseSettings,
        MailSettings,
        RateLimitSettings,
        RedisSettings,
        Settings,
    )
    from atrium.main import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        rate_limit=RateLimitSettings(enabled=False),
        mail=MailSettings(worker_in_api=False),
        data_dir=workdir / "count",
        database=DatabaseSettings(url=db_url, auto_migrate=False),
        redis=RedisSettings(url=REDIS_URL, key_prefix=f"bench-count:{uuid.uuid4().hex}:"),
    )

    async def run() -> dict[str, int]:
        app = create_app(settings)
        counts: dict[str, int] = {}
        async with app.router.lifespan_context(app):
            statements: list[str] = []

            def before(*args: Any) -> None:
                statements.append(args[2])

            event.listen(app.state.ctx.engine.sync_engine, "before_cursor_execute", before)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
                # Warm-up: the first requests open pool connections, and asyncpg runs its
                # set-up queries then; those are not the cost of a request.
                warm = f"warm-{uuid.uuid4().hex[:8]}@example.com"
                await c.post("/api/v1/auth/register", json={"email": warm, "password": PASSWORD})
                warm_tokens = (await c.post("/api/v1/auth/login", data=_form(warm))).json()
                await c.get(
                    "/api/v1/users/me",
                    headers={"Authorization": f"Bearer {warm_tokens['access_token']}"},
                )
                await c.post(
                    "/api/v1/auth/refresh", json={"refresh_token": warm_tokens["refresh_token"]}
                )
                email = f"count-{uuid.uuid4().hex[:8]}@example.com"
                await c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
                for name, call in (
                    ("login", lambda: c.post("/api/v1/auth/login", data=_form(email))),
                ):
                    statements.clear()
                    r = await call()
                    counts[name] = len(statements)
                tokens = r.json()
                auth = {"Authorization": f"Bearer {tokens['access_token']}"}
                statements.clear()
                await c.get("/api/v1/users/me", headers=auth)
                counts["me (cache cold)"] = len(statements)
                statements.clear()
                await c.get("/api/v1/users/me", headers=auth)
                counts["me (cache warm)"] = len(statements)
                statements.clear()
                await c.post(
                    "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
                )
                counts["refresh"] = len(statements)
        return counts

    return asyncio.run(run())


def _form(email: str) -> dict[str, str]:
    return {"username": email, "password": PASSWORD}


@dataclass
class Report:
    machine: dict[str, str] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(r: Result | None) -> tuple[str, str, str]:
    if r is None:
        return ("n/a", "n/a", "n/a")
    return (f"{r.rps:,.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}")


def table(title: str, rows: dict[str, Result | None], ratios: list[tuple[str, str, str]]) -> str:
    lines = [
        f"### {title}",
        "",
        "| system | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        rps, p50, p99 = fmt(r)
        lines.append(f"| {name} | {rps} | {p50} | {p99} | {r.errors if r else 'n/a'} |")
    if ratios:
        lines += ["", "| ratio | measured | target | met |", "|---|---|---|---|"]
        for label, value, target in ratios:
            lines.append(f"| {label} | {value} | {target} | {_met(value, target)} |")
    return "\n".join(lines) + "\n"


def _met(value: str, target: str) -> str:
    m = re.match(r"([≥≤]) ([\d.]+)", target)
    if not m:
        return ""
    v = float(value.rstrip("×").replace(",", "").split()[0])
    bound = float(m.group(2))
    return "yes" if (v >= bound if m.group(1) == "≥" else v <= bound) else "no"


@contextmanager
def servers(workdir: Path, run_id: str) -> Iterator[tuple[Server, Server, str]]:
    atrium_db = fresh_database("atrium_bench")
    peer_db = fresh_database("fu_bench")
    started: list[Server] = []
    try:
        started.append(start_atrium(workdir, atrium_db, run_id))
        started.append(start_peer(workdir, peer_db))
        yield started[0], started[1], atrium_db
    finally:
        for server in reversed(started):
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (Debian: apt-get install wrk); `make bench` installs it")

    install_cleanup()
    run_id = uuid.uuid4().hex[:8]
    d, n = args.duration, args.runs
    report = Report()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        t_hash = hash_verify_seconds()
        cores = server_cores()
        hash_limit = cores / t_hash
        with servers(tmp, run_id) as (atrium, peer, atrium_db):
            tok_a = register_and_login(atrium.base, "atrium", "me-a@example.com")
            tok_p = register_and_login(peer.base, "peer", "me-p@example.com")
            hello = {
                "atrium": (f"{atrium.base}/health/live", script(static_request("GET"), tmp)),
                "peer": (f"{peer.base}/health", script(static_request("GET"), tmp)),
            }
            me = {
                "atrium": (
                    f"{atrium.base}/api/v1/users/me",
                    script(
                        static_request(
                            "GET", headers={"Authorization": f"Bearer {tok_a['access_token']}"}
                        ),
                        tmp,
                    ),
                ),
                "peer": (
                    f"{peer.base}/users/me",
                    script(
                        static_request(
                            "GET", headers={"Authorization": f"Bearer {tok_p['access_token']}"}
                        ),
                        tmp,
                    ),
                ),
            }
            form = "username=me-a%40example.com&password=correct+horse+battery+staple"
            form_p = "username=me-p%40example.com&password=correct+horse+battery+staple"
            ctype = {"Content-Type": "application/x-www-form-urlencoded"}
            login = {
                "atrium": (
                    f"{atrium.base}/api/v1/auth/login",
                    script(static_request("POST", form, ctype), tmp),
                ),
                "peer": (
                    f"{peer.base}/auth/jwt/login",
                    script(static_request("POST", form_p, ctype), tmp),
                ),
            }
            register = {
                "atrium": (
                    f"{atrium.base}/api/v1/auth/register",
                    script(lua_section("register"), tmp),
                ),
                "peer": (f"{peer.base}/auth/register", script(lua_section("register"), tmp)),
            }

            print("warm-up", flush=True)
            for sysname in ("atrium", "peer"):
                wrk(*hello[sysname], CONNECTIONS, 2)
                wrk(*me[sysname], CONNECTIONS, 2)

            results: dict[str, dict[str, list[Result]]] = {}

            def measure(
                scenario: str, sysname: str, target: tuple[str, Path], conns: int, **kw: Any
            ) -> None:
                results.setdefault(scenario, {}).setdefault(sysname, []).append(
                    wrk(*target, conns, d, **kw)
                )

            storm: dict[str, list[Result]] = {"atrium": [], "peer": []}
            for i in range(n):
                print(f"run {i + 1}/{n}", flush=True)
                for sysname in ("atrium", "peer"):
                    measure("hello", sysname, hello[sysname], CONNECTIONS)
                    measure("me", sysname, me[sysname], CONNECTIONS)
                    measure("login", sysname, login[sysname], LOGIN_CONNECTIONS)
                    measure(
                        "register",
                        sysname,
                        register[sysname],
                        LOGIN_CONNECTIONS,
                        env={"BENCH_RUN": f"{run_id}{i}"},
                    )
                    # me while other connections log in continuously.
                    storm_login = wrk_start(*login[sysname], LOGIN_CONNECTIONS, d + 1)
                    time.sleep(0.5)
                    storm[sysname].append(wrk(*me[sysname], CONNECTIONS, d))
                    wrk_result(storm_login)
                seeds = [
                    register_and_login(atrium.base, "atrium", "me-a@example.com")["refresh_token"]
                    for _ in range(CONNECTIONS)
                ]
                measure(
                    "refresh",
                    "atrium",
                    (f"{atrium.base}/api/v1/auth/refresh", script(lua_section("refresh"), tmp)),
                    CONNECTIONS,
                    env={"BENCH_REFRESH_TOKENS": ",".join(seeds)},
                )
            rss = {"atrium": atrium.peak_rss_mib(), "peer": peer.peak_rss_mib()}
            statements = count_statements(atrium_db, tmp)

    med = {s: {k: Result.median(v) for k, v in per.items()} for s, per in results.items()}
    st = {k: Result.median(v) for k, v in storm.items()}
    a, p = "atrium", "peer"
    report.machine = machine_info(cores)
    report.sections.append(
        table(
            "hello — a trivial route (the stack's ceiling)",
            {
                "Atrium `GET /health/live`": med["hello"][a],
                "fastapi-users `GET /health`": med["hello"][p],
            },
            [],
        )
    )
    report.sections.append(
        table(
            "me — authenticated `GET /users/me`",
            {"Atrium": med["me"][a], "fastapi-users": med["me"][p]},
            [
                (
                    "Atrium me / Atrium hello",
                    f"{med['me'][a].rps / med['hello'][a].rps:.2f}×",
                    "≥ 0.5×",
                ),
                ("Atrium me / peer me", f"{med['me'][a].rps / med['me'][p].rps:.1f}×", "≥ 5×"),
                (
                    "peer me / peer hello",
                    f"{med['me'][p].rps / med['hello'][p].rps:.2f}×",
                    "(reference: 0.10×)",
                ),
            ],
        )
    )
    report.sections.append(
        table(
            f"login — password login, {LOGIN_CONNECTIONS} connections",
            {"Atrium": med["login"][a], "fastapi-users": med["login"][p]},
            [
                (
                    f"Atrium login / machine limit ({cores} cores × 1/{t_hash * 1000:.1f} ms = {hash_limit:.1f}/s)",
                    f"{med['login'][a].rps / hash_limit:.2f}×",
                    "≥ 0.9×",
                ),
            ],
        )
    )
    report.sections.append(
        table(
            f"me under login storm — {CONNECTIONS} connections on me while {LOGIN_CONNECTIONS} log in",
            {"Atrium": st[a], "fastapi-users": st[p]},
            [
                (
                    "Atrium me under storm / Atrium me unloaded",
                    f"{st[a].rps / med['me'][a].rps:.2f}×",
                    "≥ 0.5×",
                ),
                ("Atrium p99 under storm (ms)", f"{st[a].p99_ms:.1f}", "≤ 50"),
                (
                    "peer me under storm / peer me unloaded",
                    f"{st[p].rps / med['me'][p].rps:.2f}×",
                    "(reference: 0.04×)",
                ),
            ],
        )
    )
    report.sections.append(
        table(
            f"refresh — token rotation, {CONNECTIONS} connections (the peer has no refresh tokens)",
            {"Atrium": med["refresh"][a], "fastapi-users": None},
            [],
        )
    )
    report.sections.append(
        table(
            f"register — {LOGIN_CONNECTIONS} connections (hash-bound)",
            {"Atrium": med["register"][a], "fastapi-users": med["register"][p]},
            [
                (
                    "Atrium register / hash limit",
                    f"{med['register'][a].rps / hash_limit:.2f}×",
                    "(one argon2id hash each)",
                )
            ],
        )
    )
    extra = [
        "### Server resources",
        "",
        "| | Atrium | fastapi-users |",
        "|---|---|---|",
        f"| peak RSS (MiB) | {rss['atrium']:.0f} | {rss['peer']:.0f} |",
        "",
        "| SQL statements per request (Atrium) | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in statements.items()],
        "",
    ]
    report.sections.append("\n".join(extra))
    write(args.output, report, d, n)
    print(f"wrote {args.output}")


def machine_info(cores: int) -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    from importlib.metadata import version

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "CPU": cpu,
        "cores available": str(cores),
        "Python": platform.python_version(),
        "Atrium": f"{version('atrium')} ({commit})",
        "FastAPI / granian / uvicorn": f"{version('fastapi')} / {version('granian')} / {version('uvicorn')}",
        "wrk": wrk_version.split("[")[0].strip() or "wrk",
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


GENERATED_START = "<!-- bench/run.py: generated section, rewritten by `make bench` -->"
GENERATED_END = "<!-- end of generated section -->"


def write(path: Path, report: Report, duration: float, runs: int) -> None:
    machine = "\n".join(f"| {k} | {v} |" for k, v in report.machine.items())
    generated = (
        f"{GENERATED_START}\n\n"
        f"Servers: Atrium `atrium serve` (1 worker, granian, PostgreSQL + Redis) and the "
        f"fastapi-users peer (1 uvicorn worker, same PostgreSQL, its own database). Load: wrk, "
        f"1 thread, {CONNECTIONS} connections unless noted, {duration:g} s per run, median of "
        f"{runs} runs after a warm-up; client and servers share the machine.\n\n"
        f"| machine | |\n|---|---|\n{machine}\n\n"
        + "\n".join(report.sections)
        + f"\n{GENERATED_END}"
    )
    old = path.read_text() if path.exists() else ""
    if GENERATED_START in old and GENERATED_END in old:
        before, rest = old.split(GENERATED_START, 1)
        after = rest.split(GENERATED_END, 1)[1]
        text = before + generated + after
    else:
        text = "# Benchmarks\n\n" + generated + "\n" + old
    path.write_text(text)


if __name__ == "__main__":
    main()
