"""Hostile input on every route: NUL characters in any string (path, query, JSON body,
form) and naive or out-of-range date-times are 4xx problem+json, never a 500, whoever
asks. The routes and their parameters are read from the OpenAPI document, so a new route
is covered without touching this file."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from tests.factories import signed_in, signed_in_as

NUL = "a\x00b"
METHODS = {"get", "put", "post", "patch", "delete"}
BAD_DATETIMES = [
    "2026-01-01T00:00:00",  # naive
    "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
]
# Would end the caller's session for the cases that follow.
SESSION_ENDING = {("post", "/api/v1/auth/logout"), ("delete", "/api/v1/users/me")}


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def hostile_value(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A value of ``schema``'s shape whose every string carries a NUL."""
    schema = resolve(spec, schema)
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        option = resolve(spec, option)
        if option.get("type") != "null":
            return hostile_value(spec, option, depth)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return {}
        props = schema.get("properties", {})
        if not props:
            return {NUL: NUL}
        return {name: hostile_value(spec, sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [hostile_value(spec, schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if "enum" in schema:
        first = schema["enum"][0]
        return f"{first}\x00" if isinstance(first, str) else first
    return NUL


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS and (method, path) not in SESSION_ENDING
    ]


def is_datetime(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = resolve(spec, schema)
    options = [resolve(spec, s) for s in schema.get("anyOf", [])] or [schema]
    return any(s.get("format") == "date-time" for s in options)


def fill_path(path: str, params: list[dict[str, Any]], value: str) -> str:
    for p in params:
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", value)
    return path


def assert_refused(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), what


@pytest.fixture
async def callers(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, dict[str, str]]:
    user = await signed_in(client, "user@example.com")
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "superadmin")
    return {"anonymous": {}, "user": user, "admin": admin}


@pytest.fixture
def spec(openapi_spec: dict[str, Any]) -> dict[str, Any]:
    return openapi_spec


@pytest.mark.parametrize("caller", ["anonymous", "user", "admin"])
async def test_nul_in_any_string_of_any_route_is_refused(
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    callers: dict[str, dict[str, str]],
    caller: str,
) -> None:
    headers = callers[caller]
    checked = 0
    for method, path, op in operations(spec):
        params = op.get("parameters", [])
        # Every path parameter at once, then each query parameter in turn.
        if any(p["in"] == "path" for p in params):
            url = fill_path(path, params, "a%00b")
            assert_refused(await client.request(method, url, headers=headers), f"{method} {url}")
            checked += 1
        base = fill_path(path, params, "00000000-0000-4000-8000-000000000000")
        for p in params:
            if p["in"] == "query":
                response = await client.request(
                    method, base, params={p["name"]: NUL}, headers=headers
                )
                assert_refused(response, f"{method} {path}?{p['name']}")
                checked += 1
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            body = hostile_value(spec, content["application/json"].get("schema", {}))
            response = await client.request(method, base, json=body, headers=headers)
            assert_refused(response, f"{method} {path} json")
            checked += 1
        if "application/x-www-form-urlencoded" in content:
            schema = resolve(spec, content["application/x-www-form-urlencoded"]["schema"])
            form = {name: NUL for name in schema.get("properties", {})}
            response = await client.request(method, base, data=form, headers=headers)
            assert_refused(response, f"{method} {path} form")
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("caller", ["anonymous", "user", "admin"])
async def test_naive_or_out_of_range_datetimes_in_any_query_are_refused(
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    callers: dict[str, dict[str, str]],
    caller: str,
) -> None:
    headers = callers[caller]
    found = []
    for method, path, op in operations(spec):
        params = op.get("parameters", [])
        base = fill_path(path, params, "00000000-0000-4000-8000-000000000000")
        for p in params:
            if p["in"] == "query" and is_datetime(spec, p.get("schema", {})):
                found.append(f"{path}?{p['name']}")
                for value in BAD_DATETIMES:
                    response = await client.request(
                        method, base, params={p["name"]: value}, headers=headers
                    )
                    assert_refused(response, f"{method} {path}?{p['name']}={value}")
                    if caller == "admin":
                        assert response.status_code == 422, response.text
                        assert response.json()["code"] == "validation_error"
    assert len(found) >= 4, found


# --- the reported cases, one by one ------------------------------------------------------


async def test_nul_in_a_profile_name_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/profiles/a%00b")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_nul_in_a_json_field_is_422(
    client: httpx.AsyncClient, callers: dict[str, dict[str, str]]
) -> None:
    response = await client.patch(
        "/api/v1/users/me", json={"full_name": "a\u0000b"}, headers=callers["user"]
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(
    client: httpx.AsyncClient, callers: dict[str, dict[str, str]]
) -> None:
    response = await client.patch(
        "/api/v1/users/me", json={"full_name": "a\\u0000b"}, headers=callers["user"]
    )

    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "a\\u0000b"


async def test_nul_split_across_body_chunks_is_found(
    client: httpx.AsyncClient, callers: dict[str, dict[str, str]]
) -> None:
    raw = b'{"full_name": "' + b"\\\\" * 40 + b'\\u0000"}'

    async def chunks() -> Any:
        for i in range(0, len(raw), 3):
            yield raw[i : i + 3]

    response = await client.patch(
        "/api/v1/users/me",
        content=chunks(),
        headers={**callers["user"], "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_nul_in_the_login_form_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", data={"username": "a\x00b@example.com", "password": "x" * 10}
    )

    assert response.status_code == 422


@pytest.mark.parametrize("value", BAD_DATETIMES)
async def test_admin_user_list_refuses_a_bad_created_after(
    client: httpx.AsyncClient, callers: dict[str, dict[str, str]], value: str
) -> None:
    response = await client.get(
        "/api/v1/admin/users", params={"created_after": value}, headers=callers["admin"]
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
