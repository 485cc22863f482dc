"""Fault tests: Atrium against a PostgreSQL cluster, a Redis server and TCP proxies that the
tests start, stop, cut and slow themselves — never the machine's shared services.

- :class:`PgCluster`: ``initdb`` in a temporary directory, ``pg_ctl`` on a free port
  (run as the ``postgres`` user when the tests run as root, which PostgreSQL refuses).
- :class:`RedisServer`: ``redis-server`` on a free port, no persistence.
- :class:`TcpProxy`: forwards a local port to a target and can cut (reset every connection,
  refuse new ones), kill the open connections, or hold (black-hole: accept and read, forward
  nothing) — the ways a network or a server fails.

Without the PostgreSQL or Redis binaries the tests that need them are skipped with the
reason — unless ``ATRIUM_TEST_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where a missing
binary fails the run instead, so CI never skips the fault tests silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from atrium import migrate
from atrium.config import (
    AuthSettings,
    DatabaseSettings,
    Environment,
    EventSettings,
    MailSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
)
from atrium.core.clock import Clock, FrozenClock
from atrium.main import create_app
from tests.conftest import FAST_ARGON2


def _missing(what: str) -> None:
    """Skip (locally) or fail (CI) for a missing server binary."""
    if os.environ.get("ATRIUM_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what}: required by ATRIUM_TEST_REQUIRE_SERVICES=1")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    candidates = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], check=True, capture_output=True, text=True
            ).stdout
            candidates.append(out.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PgCluster:
    """A PostgreSQL cluster of the test's own, on 127.0.0.1:<port>, trust authentication."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.datadir = Path(tempfile.mkdtemp(prefix="atrium-pg-"))
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            shutil.chown(self.datadir, self._user)
        self.logfile = self.datadir / "server.log"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=self._user,
            cwd=self.datadir,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> None:
        data = str(self.datadir / "data")
        self._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.datadir} -c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.datadir / "data"), "-l", str(self.logfile),
                  "-w", "-t", "60", "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``mode``: ``smart``, ``fast`` (disconnect clients) or ``immediate`` (crash)."""
        self._run("pg_ctl", "-D", str(self.datadir / "data"), "-w", "-t", "60", "-m", mode,
                  "stop")  # fmt: skip

    def createdb(self, name: str, template: str | None = None) -> None:
        args = ["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        if template:
            args += ["-T", template]
        self._run(*args, name)

    def url(self, database: str, port: int | None = None) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port or self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A running cluster with a migrated template database ``atrium_template``."""
    bindir = _pg_bindir()
    if bindir is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl) not found; apt install postgresql")
    cluster = PgCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        cluster.createdb("atrium_template")
        migrate.upgrade(cluster.url("atrium_template"))
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh migrated database of the test's own (a copy of the template)."""
    name = f"atrium_{uuid.uuid4().hex[:10]}"
    pg_cluster.createdb(name, template="atrium_template")
    return pg_cluster.url(name)


# --- Redis ----------------------------------------------------------------------------------


class RedisServer:
    """``redis-server`` of the test's own on 127.0.0.1:<port> (no persistence)."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="atrium-redis-"))
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server not found; apt install redis-server")
    server = RedisServer(binary)
    yield server
    server.stop()


# --- TCP proxy ------------------------------------------------------------------------------


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``, and fails on demand.

    - :meth:`cut`: reset every connection and refuse new ones; :meth:`restore` listens again.
    - :meth:`kill_connections`: reset every open connection, keep accepting new ones.
    - :meth:`hold`: a black hole — connections are accepted and their bytes read, but
      nothing is forwarded either way, so the peer waits for an answer that never comes;
      :meth:`release` lets traffic flow again.

    ``chunks`` counts what the clients sent (each read of client bytes, held or not): the
    number of attempts a client made.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.Transport] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.connections = 0
        self.chunks = 0

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.flowing.set()
        if self.server is not None:
            self.server.close()
        # Connections accepted just before the close start their handler on the next turns
        # of the loop: let them register before every transport is reset.
        for _ in range(3):
            await asyncio.sleep(0)
        self.kill_connections()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_client: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if from_client:
                    self.chunks += 1
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        self.transports.add(transport)
        up_transport: asyncio.Transport | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            up_transport = up_writer.transport
            assert isinstance(up_transport, asyncio.Transport)
            self.transports.add(up_transport)
            if transport.is_closing():  # cut while the upstream connection was opening
                return
            await asyncio.gather(
                self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
            )
        except OSError:
            pass
        finally:
            # Every way out (done, refused upstream, cut, cancelled at teardown) closes both
            # sockets: a transport left to the garbage collector is a ResourceWarning that
            # fails whichever test happens to be running then.
            for each in (transport, up_transport):
                if each is not None:
                    self.transports.discard(each)
                    if not each.is_closing():
                        each.abort()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def kill_connections(self) -> None:
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        self.kill_connections()
        await self.server.wait_closed()
        self.server = None

    def hold(self) -> None:
        self.flowing.clear()

    def release(self) -> None:
        self.flowing.set()


# --- Atrium nodes ---------------------------------------------------------------------------


def fault_settings(
    tmp_path: Path,
    database_url: str,
    *,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    database: dict[str, Any] | None = None,
    redis: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    mail: dict[str, Any] | None = None,
    rate_limit: dict[str, Any] | None = None,
) -> Settings:
    """Settings of one Atrium node for a fault test (fast hashing, no rate limits)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path / f"var-{uuid.uuid4().hex[:6]}",
        database=DatabaseSettings(url=database_url, auto_migrate=False, **(database or {})),
        redis=RedisSettings(
            url=redis_url,
            key_prefix=redis_prefix or f"atrium-fault:{uuid.uuid4().hex}:",
            **(redis or {}),
        ),
        auth=AuthSettings(**FAST_ARGON2, hash_concurrency=4, **(auth or {})),
        rate_limit=RateLimitSettings(**(rate_limit or {"enabled": False})),
        mail=MailSettings(
            worker_in_api=False, from_address="Atrium <no-reply@atrium.test>", **(mail or {})
        ),
        # The event and webhook workers are not under test here; with the tight statement
        # time-outs some tests set, their own polls would fail alongside the request.
        events=EventSettings(worker_in_api=False),
        gc_freeze=False,
    )


@dataclass
class Node:
    """One running Atrium application and a client for it."""

    app: Any
    client: httpx.AsyncClient

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx


StartNode = Callable[..., Any]


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """``await start_node(settings, clock=None)``: a running app; all stop after the test."""
    async with AsyncExitStack() as stack:

        async def start(settings: Settings, clock: Clock | None = None) -> Node:
            app = create_app(settings, clock or FrozenClock())
            await stack.enter_async_context(app.router.lifespan_context(app))
            # Count a 500 as a response instead of raising the app's exception in the test.
            transport = httpx.ASGITransport(
                app=app, client=("203.0.113.7", 51000), raise_app_exceptions=False
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://atrium.test")
            )
            return Node(app, client)

        yield start
