"""A browser-like client for the pages: HTTPS base URL (so ``__Host-`` cookies are kept
and sent), no automatic redirects, and helpers to read a form's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import PASSWORD

_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 52000))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="https://atrium.test",
        headers={"User-Agent": "pytest-browser"},
    ) as c:
        yield c


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """GET ``page``, then POST ``data`` with its CSRF token to ``action``."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf_token": token})


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    response = await post_form(client, "/login", "/login", {"email": email, "password": password})
    assert response.status_code == 303, response.text
    return response
