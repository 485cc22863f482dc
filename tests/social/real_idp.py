"""A real OpenID Provider for the tests: panva's ``oidc-provider`` (npm), started from
``tests/idp/`` on a free loopback port with one registered client, and a driver that
walks its development login and consent forms like a browser would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
CLIENT_ID = "atrium"
CLIENT_SECRET = "atrium-test-secret"  # nosec B105
_FORM = re.compile(r'<form[^>]*action="([^"]+)"')
_INPUT = re.compile(r"<input[^>]*>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def _npm_ci() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the real OpenID provider (.ci/browser-deps)")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=IDP_DIR,
            check=True,
            timeout=300,
        )


@contextmanager
def oidc_provider(redirect_uris: list[str]) -> Iterator[str]:
    """Run oidc-provider with the client ``atrium`` allowed ``redirect_uris``; its issuer."""
    _npm_ci()
    proc = subprocess.Popen(
        ["node", "server.js"],
        cwd=IDP_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={
            **os.environ,
            "IDP_CLIENT_ID": CLIENT_ID,
            "IDP_CLIENT_SECRET": CLIENT_SECRET,
            "IDP_REDIRECT_URIS": " ".join(redirect_uris),
        },
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "oidc-provider did not start"
        yield json.loads(line)["issuer"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _form(html: str) -> tuple[str, dict[str, str]]:
    match = _FORM.search(html)
    assert match, "no form on the provider's page"
    fields = {}
    for tag in _INPUT.findall(html):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return match.group(1), fields


async def through_provider(authorization_url: str, login: str, stop_at: str) -> str:
    """Follow the provider's redirects and submit its login and consent forms, as
    ``login`` (any password); the URL of the redirect back to ``stop_at``."""
    async with httpx.AsyncClient() as idp:
        response = await idp.get(authorization_url)
        for _step in range(12):
            location = response.headers.get("location")
            if location is not None and location.startswith(stop_at):
                return location
            if location is not None:
                response = await idp.get(str(response.url.join(location)))
                continue
            assert response.status_code == 200, response.text[:500]
            action, fields = _form(response.text)
            if "login" in fields:
                fields.update(login=login, password="any password")
            response = await idp.post(str(response.url.join(action)), data=fields)
    raise AssertionError("the provider never redirected back")
