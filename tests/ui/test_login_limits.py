"""The sign-in page applies the API's per-IP rate limit and brute-force throttle."""

from __future__ import annotations

import httpx
import pytest

from atrium.config import Settings
from tests.factories import PASSWORD, register
from tests.ui.conftest import post_form


@pytest.fixture
def settings(settings: Settings) -> Settings:
    limits = settings.rate_limit.model_copy(
        update={"login": "3/minute", "login_failures_per_account": 2}
    )
    return settings.model_copy(update={"rate_limit": limits})


async def test_the_login_rate_limit_applies_to_the_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    statuses = []
    for n in range(4):
        response = await post_form(
            browser, "/login", "/login", {"email": f"nobody{n}@example.com", "password": "wrong"}
        )
        statuses.append(response.status_code)
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3] == 429
    assert "Too many requests" in response.text
    assert "retry-after" in response.headers


async def test_failed_sign_ins_throttle_the_account(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    for _ in range(2):
        await post_form(
            browser, "/login", "/login", {"email": "ada@example.com", "password": "wrong one"}
        )
    response = await post_form(
        browser, "/login", "/login", {"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.text
