"""How long a process of Atrium takes to start: the CPU time of ``import atrium.main`` and
the wall time of ``atrium serve`` from its start to the first ``200`` of ``/health/live``,
each as a ratio to a reference measured alternately in the same run; writes the result
into docs/benchmarks.md.

    uv run python bench/startup.py [--runs 8] [--against REV] [--no-doc]

The reference of the import is the frameworks alone (``import fastapi,
sqlalchemy.ext.asyncio, pydantic_settings``): what no change to Atrium can remove.
``--against REV`` also measures the same two figures on the source tree of a git revision
(a temporary worktree put first on ``PYTHONPATH``, with this checkout's .venv), so that a
change to start-up is measured against the tree before it. Every server starts on the
embedded default (SQLite, in-process cache) in an empty data directory, so its first
start migrates the database, as a newcomer's does.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import doc_section
import run  # bench/run.py: starting and stopping servers

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Process start-up"
PYTHON = sys.executable
ATRIUM = str(Path(PYTHON).with_name("atrium"))
FRAMEWORKS = "import fastapi, sqlalchemy.ext.asyncio, pydantic_settings"
READY_TIMEOUT = 120.0


def _env(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def import_cpu(code: str, src: Path | None) -> float:
    """CPU seconds (user + system) of ``python -c code`` in a new interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([PYTHON, "-c", code], env=_env(src), check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_ready(src: Path | None) -> float:
    """Seconds from starting ``atrium serve`` to its first ``200`` on ``/health/live``
    (polled every 20 ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        env = _env(src) | {"ATRIUM_DATA_DIR": f"{tmp}/var"}
        log_path = Path(tmp) / "atrium.log"
        with log_path.open("wb") as log:
            started = time.perf_counter()
            proc = run.launch(
                [ATRIUM, "serve", "--port", str(port)],
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                run.wait_ready(
                    f"http://127.0.0.1:{port}",
                    "/health/live",
                    proc,
                    log_path,
                    timeout=READY_TIMEOUT,
                    interval=0.02,
                )
                return time.perf_counter() - started
            finally:
                run.stop_process(proc)


def alternate(runs: int, kinds: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each measurement ``runs`` times, the kinds alternating (the order reversed every
    other round, so a machine whose load drifts favours none)."""
    names = list(kinds)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        for name in names if i % 2 == 0 else reversed(names):
            out[name].append(kinds[name]())
    return out


def _worktree(rev: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(into), rev],
        check=True,
    )
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    run.install_cleanup()  # servers stopped, and the worktree removed, on SIGTERM too
    here = "this tree"
    with tempfile.TemporaryDirectory() as tmp:
        other = _worktree(args.against, Path(tmp) / "against") if args.against else None
        try:
            imports: dict[str, Callable[[], float]] = {
                "frameworks": lambda: import_cpu(FRAMEWORKS, None),
                here: lambda: import_cpu("import atrium.main", None),
            }
            serves: dict[str, Callable[[], float]] = {here: lambda: serve_ready(None)}
            if other is not None:
                imports[args.against] = lambda: import_cpu("import atrium.main", other)
                serves[args.against] = lambda: serve_ready(other)
            imported = alternate(args.runs, imports)
            served = alternate(args.runs, serves)
        finally:
            if other is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other.parent)],
                    check=False,
                )
    med = {k: statistics.median(v) for k, v in imported.items()}
    ready = {k: statistics.median(v) for k, v in served.items()}
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with"
        f" `bench/startup.py --runs {args.runs}"
        + (f" --against {args.against}`" if args.against else "`")
        + f" on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        " (medians; the kinds alternated in one run). The import's reference is the"
        f" frameworks alone (`{FRAMEWORKS}`). Load average (1 min) at the end: {load:.2f}"
        " (the machine is shared: only the ratios are comparable between runs).",
        "",
        "| | `import atrium.main`, CPU | × the frameworks' import | `atrium serve` ready |",
        "|---|---|---|---|",
    ]
    for name in served:
        lines.append(
            f"| {name} | {med[name]:.2f} s | {med[name] / med['frameworks']:.2f} |"
            f" {ready[name]:.2f} s |"
        )
    lines.append(f"| the frameworks alone | {med['frameworks']:.2f} s | 1.00 | |")
    if args.against:
        lines += [
            "",
            f"This tree against {args.against}: import CPU"
            f" ×{med[here] / med[args.against]:.2f}, `atrium serve` ready"
            f" ×{ready[here] / ready[args.against]:.2f}.",
        ]
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_doc:
        doc_section.write_section(DOC, SECTION, section)


if __name__ == "__main__":
    if shutil.which("git") is None:
        raise SystemExit("git is required")
    main()
