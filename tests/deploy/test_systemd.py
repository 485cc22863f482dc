"""deploy/systemd/atrium.service: systemd accepts it, and it keeps its hardening."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import DEPLOY, need

UNIT = DEPLOY / "systemd" / "atrium.service"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = need("systemd-analyze", "systemd")
    # verify checks that ExecStart exists: point it at this environment's atrium.
    atrium = str(Path(sys.executable).with_name("atrium"))
    unit = tmp_path / "atrium.service"
    unit.write_text(UNIT.read_text().replace("/opt/atrium/bin/atrium", atrium))

    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "atrium.service" not in result.stderr


def test_unit_is_hardened() -> None:
    options = dict(line.split("=", 1) for line in UNIT.read_text().splitlines() if "=" in line[:40])

    assert options["User"] == "atrium"
    assert options["NoNewPrivileges"] == "yes"
    assert options["ProtectSystem"] == "strict"
    assert options["ReadWritePaths"] == "/var/lib/atrium"
    assert options["CapabilityBoundingSet"] == ""
    assert options["PrivateTmp"] == options["PrivateDevices"] == "yes"
