"""The test harness's cache of FastAPI route builds (tests/route_cache.py): a second app
builds no route again, and answers as the first did."""

from __future__ import annotations

import httpx

from atrium.config import Settings
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from tests import route_cache

PATHS = ["/api/v1/users/me", "/account", "/api/v1/nowhere", "/health/live"]


async def _answers(settings: Settings) -> list[tuple[int, str]]:
    app = create_app(settings, FrozenClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            responses = [await c.get(path) for path in PATHS]
    return [(r.status_code, r.headers.get("content-type", "").split(";")[0]) for r in responses]


async def test_a_second_app_builds_no_route_again_and_answers_the_same(
    settings: Settings,
) -> None:
    first = await _answers(settings)
    built = route_cache.size()

    second = await _answers(settings)

    assert route_cache.size() == built > 150  # every route of the app, built once
    assert second == first
    assert first[0] == (401, "application/problem+json")
    assert first[2] == (404, "application/problem+json")
