"""Bounded metric labels: whatever the requests, every label of every series takes its
value from a small, known set (method names, route templates, status codes)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount

from atrium.core import metrics
from tests.factories import signed_in

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
# Labels whose values are fixed by the code (enums, limit names, outcomes); the test checks
# they stay few, not which they are.
MAX_VALUES_PER_LABEL = 64


def route_templates(app: Any) -> set[str]:
    """Every route template of the application (included routers walked), and ``unmatched``."""
    templates = {"unmatched"}

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            context = getattr(route, "include_context", None)
            if context is not None:
                walk(route.original_router.routes, prefix + context.prefix)
                continue
            templates.add(prefix + (getattr(route, "path_format", None) or route.path))
            if isinstance(route, Mount):
                templates.add(prefix + route.path + "/{path}")

    walk(app.routes, "")
    return templates


async def hostile_traffic(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    for i in range(30):
        name = f"BOGUS{i}METHOD"
        response = await client.request(name, "/health/live")
        assert response.status_code in (405, 501), (name, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
    for i in range(20):
        token = uuid.uuid4().hex
        await client.get(f"/no/such/{token}")
        await client.get(f"/api/v1/profiles/{token}")
        await client.get(f"/api/v1/users/me/sessions/{uuid.uuid4()}", headers=auth)
        await client.get(f"/docs/static/{token}/{i}.js")
        await client.get(f"/docs-assets/{token}/{i}/x.js")
        await client.get(f"/api/v1/users/me/{token}/", headers=auth)
        await client.delete(f"/api/v1/users/me/sessions/{token}", headers=auth)


async def test_absurd_method_names_are_refused_before_routing(client: httpx.AsyncClient) -> None:
    for method in ["X" * 16_384, "GET\x00", "GE T", "(GET)", "G/T"]:
        response = await client.request(method, "/health/live")

        assert response.status_code == 400, method[:20]
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "bad_method"


async def test_every_metric_label_stays_bounded_after_hostile_requests(
    app: Any, client: httpx.AsyncClient
) -> None:
    # The series are per process: forget those of the applications that earlier tests of
    # this process ran with other routes (ATRIUM_APPS), so that only this app's remain.
    metrics.HTTP_REQUESTS.clear()
    metrics.HTTP_LATENCY.clear()
    await hostile_traffic(client)
    for method in ["X" * 16_384, "BAD METHOD"]:
        await client.request(method, "/health/live")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert len(response.content) < 2_000_000
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            for label, value in sample.labels.items():
                values[(family.name, label)].add(value)

    templates = route_templates(app)
    assert values[("atrium_http_requests", "method")] <= KNOWN_METHODS | {"other"}
    assert "other" in values[("atrium_http_requests", "method")]
    assert values[("atrium_http_requests", "route")] <= templates, (
        values[("atrium_http_requests", "route")] - templates
    )
    assert values[("atrium_http_request_duration_seconds", "route")] <= templates
    too_many = {
        k: len(v) for k, v in values.items() if len(v) > MAX_VALUES_PER_LABEL and k[1] != "route"
    }
    assert too_many == {}
    # Route templates are bounded by the application's routes, never by the paths asked for.
    assert len(values[("atrium_http_requests", "route")]) <= len(templates)


@pytest.mark.parametrize("method", ["BOGUSMETHOD", "PROPFIND"])
async def test_unknown_methods_count_under_one_label(
    client: httpx.AsyncClient, method: str
) -> None:
    await client.request(method, "/health/live")
    response = await client.get("/metrics")

    assert f'method="{method}"' not in response.text
    assert 'method="other"' in response.text
