"""The first run, as a newcomer does it: a copy of the checkout without ``.venv``, the
Quickstart's ``make serve``, then every shell command of README.md and docs/*.md as written.

Commands run by default; the few that cannot run inside a test are listed in
:data:`NOT_RUN` with the reason. Long-running commands (``make serve``, ``atrium serve``,
``atrium worker``) are started in the background on a free port first, then the rest of
their block runs against them; a block that calls the API without starting a server gets
one started by the test. ``http://127.0.0.1:8000`` in a command becomes that server's
address, and ``curl`` fails on any HTTP error status.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.readiness import wait_until_ready

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCE = re.compile(r"^```(?:sh|bash|shell)\s*$")
DEFAULT_ADDRESS = "127.0.0.1:8000"

# Commands that are not run, each with its reason (a regular expression matching the whole
# command). Anything else in a shell block of the documentation is run.
NOT_RUN: dict[str, str] = {
    r"(\S+=\S+\s+(\\\n)?)*make test": "runs this very test suite (it would start itself)",
    r"uv run --with locust .*": "a load test against a deployment of your own, over the network",
    r"uv run pybabel (extract|update) .*": "rewrites the checkout's message catalogs "
    "(a maintainer's translation step)",
    # Container images and clusters: a container engine or a cluster, which deploy/test/
    # drives (make image, podman build and run, the Kubernetes manifests).
    r"make image": "builds the container image (a container engine; deploy/test/image.sh)",
    r"docker run .*": "runs the container image (a container engine; deploy/test/image.sh)",
    r"make (up|down)": "the production-shaped compose stack: a container engine and images "
    "from Docker Hub (tests/deploy/test_compose.py)",
    r"podman .*": "builds or runs an image with podman (deploy/test/)",
    r"apt-get install .*": "installs system packages as root (a machine's set-up)",
    r"printf .* > /etc/containers/containers\.conf": "writes podman's system configuration",
    r"debootstrap .*": "builds a Debian root file system (deploy/test/build_base.sh)",
    r"tar -C /var/tmp/rootfs .*": "imports the debootstrap root file system into podman",
    r"kubectl .*": "needs a Kubernetes cluster (deploy/test/kube.sh plays the manifests)",
    # Backups: production paths, an offline age identity and the database host `db`.
    r"age-keygen .*": "creates the offline backup identity (needs age; a one-off set-up)",
    r"grep 'public key' backup-identity\.txt": "reads the identity that age-keygen made",
    r"BACKUP_RECIPIENT=.* deploy/backup/backup\.sh": "a production backup into "
    "/var/backups (tests/deploy covers backup.sh)",
    r"createdb -h db .*": "the production database host `db`",
    r"deploy/backup/restore\.sh .*": "restores a production backup from /var/backups",
    r"ATRIUM_DATABASE__URL=postgresql\+asyncpg://atrium@db/.* atrium serve": "serves the "
    "restored production database on the host `db`",
}
LONG_RUNNING = re.compile(r"(^|\s)(make serve|(\.venv/bin/)?atrium (serve|worker))(\s|$)")
START_TIMEOUT = 600.0  # a cold first `make serve`: uv, the locked packages, bytecode


@dataclass
class Block:
    source: str
    commands: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.source


def _commands(lines: list[str]) -> list[str]:
    """Commands of a block: continuation lines joined, blank and comment lines dropped."""
    out: list[str] = []
    current = ""
    for line in lines:
        current = f"{current}\n{line}" if current else line
        if line.rstrip().endswith("\\"):
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            out.append(current.strip())
        current = ""
    return out


def documented_blocks() -> list[Block]:
    blocks = []
    for path in DOCUMENTS:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            if SHELL_FENCE.match(lines[i]):
                start = i
                i += 1
                body = []
                while not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                name = f"{path.relative_to(ROOT)}:{start + 1}"
                blocks.append(Block(name, _commands(body)))
            i += 1
    return blocks


def _without_comment(command: str) -> str:
    """``command`` without a trailing ``# comment`` (one outside quotes)."""
    return re.sub(r"\s+#[^'\"]*$", "", command)


def _not_run(command: str) -> str | None:
    for pattern, reason in NOT_RUN.items():
        if re.fullmatch(pattern, _without_comment(command), re.S):
            return reason
    return None


BLOCKS = documented_blocks()


def test_every_command_left_out_is_still_documented() -> None:
    commands = [c for b in BLOCKS for c in b.commands]
    stale = [
        p for p in NOT_RUN if not any(re.fullmatch(p, _without_comment(c), re.S) for c in commands)
    ]
    assert stale == []


# --- the checkout ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATRIUM_", "VIRTUAL_ENV"))}
    # As on a newcomer's machine: Python writes its bytecode caches (later starts are fast).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@dataclass
class Background:
    """A long-running documented command, started in its own process group."""

    proc: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def start(command: str, cwd: Path, log: Path, *, env: dict[str, str] | None = None) -> Background:
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env or _env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    return Background(proc, log)


def wait_ready(bg: Background, base: str) -> None:
    if wait_until_ready(base, bg.proc, START_TIMEOUT):
        return
    if bg.proc.poll() is not None:
        raise AssertionError(f"exited with {bg.proc.returncode}:\n{bg.output()[-4000:]}")
    bg.stop()
    raise AssertionError(f"not ready after {START_TIMEOUT:.0f} s:\n{bg.output()[-4000:]}")


def wait_for_line(bg: Background, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if text in bg.output():
            return
        if bg.proc.poll() is not None:
            raise AssertionError(f"exited with {bg.proc.returncode}:\n{bg.output()[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} after {START_TIMEOUT:.0f} s:\n{bg.output()[-4000:]}")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout after the Quickstart's ``make serve`` (first run: installs
    uv's locked runtime packages into its own ``.venv``)."""
    path = tmp_path_factory.mktemp("checkout")
    _copy_checkout(path)
    port = _free_port()
    server = start(f"make serve PORT={port}", path, path.parent / "first-make-serve.log")
    try:
        wait_ready(server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()
    shutil.rmtree(path / "var")
    return path


def _installed(checkout: Path, module: str) -> bool:
    probe = subprocess.run(
        [str(checkout / ".venv/bin/python"), "-c", f"import {module}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_make_serve_installs_the_runtime_only(checkout: Path) -> None:
    assert _installed(checkout, "granian")
    for tool in ("pytest", "mypy", "ruff", "schemathesis"):
        assert not (checkout / ".venv/bin" / tool).exists(), tool
    assert not _installed(checkout, "pytest")


def test_make_test_tools_install_beside_the_runtime_and_stay(checkout: Path) -> None:
    subprocess.run(
        ["make", ".venv/.synced-dev"],
        cwd=checkout,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT,
    )
    assert _installed(checkout, "pytest")
    (checkout / "pyproject.toml").touch()  # a changed lock or project: serve syncs again
    port = _free_port()
    server = start(f"make serve PORT={port}", checkout, checkout.parent / "serve-again.log")
    try:
        wait_ready(server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()
    assert "--no-dev --inexact" in server.output()
    assert _installed(checkout, "pytest")  # still there for the next `make test`


# --- every documented command --------------------------------------------------------------


def _with_port(command: str, port: int) -> str:
    """Run a long-running command on ``port`` instead of 8000."""
    command = _without_comment(command)
    if "make serve" in command:
        if re.search(r"PORT=\d+", command):
            return re.sub(r"PORT=\d+", f"PORT={port}", command)
        return f"{command} PORT={port}"
    if "atrium serve" in command:
        if re.search(r"--port \d+", command):
            return re.sub(r"--port \d+", f"--port {port}", command)
        return f"{command} --port {port}"
    return command


PREAMBLE = """\
set -euo pipefail
# Any HTTP error answer fails the command (curl alone exits 0 on a 4xx or 5xx).
curl() { command curl --show-error --fail-with-body "$@"; }
"""


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_documented_commands_run_as_written(checkout: Path, tmp_path: Path, block: Block) -> None:
    commands = [c for c in block.commands if _not_run(c) is None]
    if not commands:
        pytest.skip("every command of this block is listed in NOT_RUN")
    # A workspace of its own (its own var/), sharing the checkout's files and .venv.
    workspace = tmp_path / "project"
    workspace.mkdir()
    for entry in checkout.iterdir():
        if entry.name != "var":
            (workspace / entry.name).symlink_to(entry)
    env = _env()
    env["PATH"] = f"{env.get('PATH', '')}:{workspace / '.venv/bin'}"  # bare `atrium`
    port = _free_port()
    background: list[Background] = []
    script = [c.replace(DEFAULT_ADDRESS, f"127.0.0.1:{port}") for c in commands]
    try:
        long_running = [c for c in script if LONG_RUNNING.search(c)]
        if any("127.0.0.1:" in c for c in script) and not any("serve" in c for c in long_running):
            long_running.insert(0, ".venv/bin/atrium serve")  # the server the block calls
        for i, command in enumerate(long_running):
            bg = start(_with_port(command, port), workspace, tmp_path / f"bg{i}.log", env=env)
            background.append(bg)
            if "worker" in command:
                wait_for_line(bg, "mail_worker_started")
            else:
                wait_ready(bg, f"http://127.0.0.1:{port}")
        rest = [c for c in script if c not in long_running]
        result = subprocess.run(
            ["bash", "-c", PREAMBLE + "\n".join(rest)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (
            f"{block.source}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    finally:
        codes = [bg.stop() for bg in background]
    for bg, code in zip(background, codes, strict=True):
        assert "Traceback" not in bg.output(), bg.output()[-4000:]
        if "make" not in bg.proc.args[-1]:  # make itself reports the signal it got
            assert code == 0, bg.output()[-4000:]
