"""``bench/run.py`` stops every process it started, whichever way it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A benchmark run in miniature: it starts a "server" that has a worker process of its own
# (as granian has), prints their ids, then ends in the way the test asks for.
SCRIPT = """
import importlib.util, signal, sys, time
# As from a terminal: a process started by pytest-xdist's workers inherits SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
spec = importlib.util.spec_from_file_location("bench_run", sys.argv[1])
run = sys.modules["bench_run"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)
run.install_cleanup()
server = ["bash", "-c", "sleep 600 & echo $!; wait"]
proc = run.launch(server, stdout=run.subprocess.PIPE, text=True)
print(proc.pid, proc.stdout.readline().strip(), flush=True)
sys.stdin.readline()  # the test has seen both processes alive
how = sys.argv[2]
if how == "exception":
    raise RuntimeError("a measurement failed half-way")
if how == "exit":
    sys.exit(1)
if how == "signal":
    # Busy as a measurement is, in short calls: CPython runs a signal's handler between
    # bytecodes, so a signal that arrives after the last check and before a long blocking
    # call (one time.sleep(600)) waits for that call to return.
    while True:
        time.sleep(0.05)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


@pytest.mark.parametrize(
    "how", ["normal", "exception", "exit", "signal-term", "signal-hup", "signal-int"]
)
def test_bench_stops_its_servers_on_every_exit_path(tmp_path: Path, how: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ROOT / "bench" / "run.py"), how.split("-")[0]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    server, worker = (int(p) for p in proc.stdout.readline().split())
    assert _alive(server)
    assert _alive(worker)
    proc.stdin.write("\n")
    proc.stdin.flush()
    if how.startswith("signal"):
        sig = {"term": signal.SIGTERM, "hup": signal.SIGHUP, "int": signal.SIGINT}
        proc.send_signal(sig[how.split("-")[1]])
    proc.communicate(timeout=60)

    deadline = time.monotonic() + 30  # the worker is reparented and reaped by init
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)
    assert not _alive(worker)
