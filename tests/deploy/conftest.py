"""Deployment kit checks. They need tools from Debian packages (podman, promtool ...).

Locally a missing tool skips the test and names the package. In CI `.ci/deploy-checks`
installs every tool and sets ``ATRIUM_TEST_DEPLOY_CHECKS=1``, which turns a missing tool into a
failure, and runs the slow checks (image build, ``podman kube play``, restore drill) that
``make test`` leaves to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REQUIRED = os.environ.get("ATRIUM_TEST_DEPLOY_CHECKS") == "1"


def need(tool: str, package: str) -> str:
    """The path of ``tool``; skips (locally) or fails (CI) when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (apt-get install {package}; .ci/deploy-checks does)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return path


def need_compose() -> str:
    """A podman-compose that has the ``config`` command (>= 1.1; Debian's 1.0.3 lacks it).

    Looks in ``~/.local/bin`` (where ``uv tool install`` puts it) before ``PATH``; skips
    locally, fails under ``.ci/deploy-checks``.
    """
    candidates = [str(Path.home() / ".local" / "bin" / "podman-compose")]
    found = shutil.which("podman-compose")
    if found:
        candidates.append(found)
    for path in candidates:
        if not os.access(path, os.X_OK):
            continue
        probe = subprocess.run(
            [path, "config", "--help"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return path
    message = "podman-compose >= 1.1 is not installed (uv tool install podman-compose==1.6.0)"
    if REQUIRED:
        pytest.fail(message)
    pytest.skip(message)


def slow_check() -> None:
    """Skip unless running under .ci/deploy-checks (the check takes minutes)."""
    if not REQUIRED:
        pytest.skip("slow deployment check: run by .ci/deploy-checks (ATRIUM_TEST_DEPLOY_CHECKS=1)")
