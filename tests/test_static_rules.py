"""The repository's semgrep rules (.semgrep/atrium.yml) fire on the patterns they forbid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEMGREP = Path(sys.executable).with_name("semgrep")

VIOLATIONS = {
    "jwt-decode-without-verification": """
import jwt
def peek(token):
    return jwt.decode(token, options={"verify_signature": False})
""",
    "password-hashing-on-the-event-loop": """
async def login(hasher, password, stored):
    return hasher.verify_sync(password, stored)
""",
    "http-exception-below-routers": """
from fastapi import HTTPException
def check(x):
    raise HTTPException(status_code=400)
""",
    "commit-outside-unit-of-work": """
async def save(db, row):
    db.add(row)
    await db.commit()
""",
    "outbound-http-without-the-shared-tls-context": """
import httpx
async def fetch(url):
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(url)
""",
    "secret-in-log-call": """
def trace(log, password):
    log.info("login", password=password)
""",
}

CLEAN = """
import anyio
import httpx
from atrium.core.outbound import http_client, tls_context
async def login(hasher, password, stored):
    return await anyio.to_thread.run_sync(hasher.verify_sync, password, stored)
async def fetch(url, address):
    async with http_client(5) as client:
        await client.get(url)
    transport = PinnedTransport(address, verify=tls_context())
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        await client.get(url)
"""


def _scan(folder: Path) -> list[str]:
    result = subprocess.run(
        [
            str(SEMGREP),
            "scan",
            "--config",
            str(ROOT / ".semgrep"),
            "--metrics=off",
            "--json",
            "--quiet",
            "--no-git-ignore",
            str(folder),
        ],
        capture_output=True,
        text=True,
        env=os.environ | {"SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"},
        check=False,
        timeout=120,
    )
    data = json.loads(result.stdout)
    return [r["check_id"].rsplit(".", 1)[-1] for r in data["results"]]


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    if not SEMGREP.exists() and not shutil.which("semgrep"):
        pytest.fail("semgrep is a dev dependency and must be installed")
    folder = tmp_path_factory.mktemp("semgrep")
    for rule, code in VIOLATIONS.items():
        # service.py: the commit rule applies to services and repositories only.
        (folder / rule).mkdir()
        (folder / rule / "service.py").write_text(code)
    (folder / "clean").mkdir()
    (folder / "clean" / "service.py").write_text(CLEAN)
    return {sub.name: _scan(sub) for sub in folder.iterdir()}


@pytest.mark.parametrize("rule", sorted(VIOLATIONS))
def test_rule_fires_on_its_violation(findings: dict[str, list[str]], rule: str) -> None:
    assert rule in findings[rule]


def test_what_the_rules_allow_is_not_flagged(findings: dict[str, list[str]]) -> None:
    assert findings["clean"] == []
