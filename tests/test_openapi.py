"""The interactive docs (served offline) and the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

PROBLEM_JSON = "application/problem+json"
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
# Public, parameterless endpoints that no client input can make fail.
NO_CLIENT_ERRORS = {"/health/live", "/health/ready", "/api/v1/health", "/.well-known/jwks.json"}
AUTH_BODIES = [
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
]

ASSET_RE = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


async def assets(client: httpx.AsyncClient, page: str) -> list[str]:
    html = (await client.get(page)).text
    return ASSET_RE.findall(html)


@pytest.fixture
def spec(openapi_spec: dict[str, Any]) -> dict[str, Any]:
    return openapi_spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (and a nullable ``anyOf`` wrapper) to the schema it names."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return resolve(spec, spec["components"]["schemas"][name])
    for option in schema.get("anyOf", []):
        if "$ref" in option:
            return resolve(spec, option)
    return schema


def has_examples(spec: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = resolve(spec, media.get("schema", {}))
    if schema.get("examples") or schema.get("example") is not None:
        return True
    return any(
        p.get("examples") or p.get("example") is not None
        for p in schema.get("properties", {}).values()
    )


# --- the docs pages ----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_is_html(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_references_no_remote_url_or_cdn(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text.lower()

    assert "http://" not in html
    assert "https://" not in html
    assert "cdn" not in html


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_scripts_and_styles_are_local(client: httpx.AsyncClient, page: str) -> None:
    found = await assets(client, page)

    assert any(u.endswith(".js") for u in found), found
    assert all(u.startswith("/") and not u.startswith("//") for u in found), found


async def test_swagger_page_loads_a_stylesheet(client: httpx.AsyncClient) -> None:
    assert any(u.endswith(".css") for u in await assets(client, "/docs"))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_page_assets_are_served(client: httpx.AsyncClient, page: str) -> None:
    for url in await assets(client, page):
        response = await client.get(url)

        assert response.status_code == 200, url
        assert response.content, url
        if url.endswith(".js"):
            assert "javascript" in response.headers["content-type"], url
        if url.endswith(".css"):
            assert response.headers["content-type"].startswith("text/css"), url


async def test_swagger_oauth2_redirect_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")

    assert response.status_code == 200
    assert "https://" not in response.text


# --- the OpenAPI document ----------------------------------------------------------------


async def test_every_api_operation_has_a_summary(spec: dict[str, Any]) -> None:
    missing = [
        f"{m.upper()} {p}"
        for m, p, op in operations(spec)
        if p.startswith("/api/v1") and not str(op.get("summary", "")).strip()
    ]

    assert missing == []


async def test_every_operation_documents_a_problem_json_client_error(
    spec: dict[str, Any],
) -> None:
    missing = [
        f"{m.upper()} {p}"
        for m, p, op in operations(spec)
        if p not in NO_CLIENT_ERRORS
        and not any(
            code.startswith("4") and PROBLEM_JSON in resp.get("content", {})
            for code, resp in op["responses"].items()
        )
    ]

    assert missing == []


async def test_problem_responses_carry_the_problem_details_schema(spec: dict[str, Any]) -> None:
    wrong = []
    for method, path, op in operations(spec):
        for code, resp in op["responses"].items():
            content = resp.get("content", {})
            if PROBLEM_JSON not in content:
                continue
            schema = resolve(spec, content[PROBLEM_JSON].get("schema", {}))
            if schema.get("title") != "ProblemDetails" or "code" not in schema.get(
                "properties", {}
            ):
                wrong.append(f"{method.upper()} {path} {code}")

    assert wrong == []


async def test_problem_responses_are_not_documented_as_plain_json(spec: dict[str, Any]) -> None:
    wrong = [
        f"{m.upper()} {p} {code}"
        for m, p, op in operations(spec)
        for code, resp in op["responses"].items()
        if PROBLEM_JSON in resp.get("content", {}) and "application/json" in resp["content"]
    ]

    assert wrong == []


async def test_problem_descriptions_name_the_error_codes(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/api/v1/users/me/sessions/{session_id}"]["delete"]["responses"]

    assert "`session_not_found`" in responses["404"]["description"]
    assert "`not_authenticated`" in responses["401"]["description"]


@pytest.mark.parametrize(("method", "path"), AUTH_BODIES, ids=[p for _, p in AUTH_BODIES])
async def test_auth_route_documents_an_example_body(
    spec: dict[str, Any], method: str, path: str
) -> None:
    body = spec["paths"][path][method]["requestBody"]

    assert any(has_examples(spec, media) for media in body["content"].values()), body


async def test_security_scheme_is_oauth2_password_flow_on_the_login_route(
    spec: dict[str, Any],
) -> None:
    schemes = spec["components"]["securitySchemes"].values()

    flows = [s["flows"]["password"] for s in schemes if s["type"] == "oauth2"]
    assert [f["tokenUrl"] for f in flows] == ["/api/v1/auth/login"]


async def test_authenticated_operations_declare_the_oauth2_security(spec: dict[str, Any]) -> None:
    scheme = next(iter(spec["components"]["securitySchemes"]))
    op = spec["paths"]["/api/v1/users/me"]["get"]

    assert {scheme: []} in op["security"]


async def test_public_auth_operations_declare_no_security(spec: dict[str, Any]) -> None:
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"):
        assert "security" not in spec["paths"][path]["post"], path


# --- turning the docs off -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
async def test_api_docs_can_be_turned_off(path: str, tmp_path: Any) -> None:
    from atrium.config import HttpSettings, Settings
    from atrium.main import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "var",
        http=HttpSettings(api_docs=False),
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        response = await c.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


def test_api_docs_are_off_by_default_in_production_only() -> None:
    from atrium.config import (
        ApiKeySettings,
        AuthSettings,
        DatabaseSettings,
        Environment,
        HttpSettings,
        MailSettings,
        Settings,
    )

    production = {
        "environment": Environment.production,
        "database": DatabaseSettings(url="postgresql+asyncpg://atrium@db/atrium"),
        "auth": AuthSettings(signing_key_file="/etc/atrium/key.pem"),
        "mail": MailSettings(smtp_host="smtp.example.com", link_base_url="https://id.example"),
        "api_keys": ApiKeySettings(hmac_secret="a-test-api-key-hmac-secret"),
    }

    def docs(**kwargs: Any) -> bool:
        return Settings(_env_file=None, **kwargs).api_docs_enabled  # type: ignore[call-arg]

    assert docs() is True
    assert docs(environment=Environment.test) is True
    assert docs(**production) is False
    assert docs(**production, http=HttpSettings(api_docs=True)) is True


# --- conformance: what the document says is what the server does -------------------------


async def test_validation_errors_are_documented_as_problem_json_only(spec: dict[str, Any]) -> None:
    wrong = [
        f"{m.upper()} {p}"
        for m, p, op in operations(spec)
        if "422" in op["responses"]
        and set(op["responses"]["422"].get("content", {})) != {PROBLEM_JSON}
    ]

    assert wrong == []
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_every_operation_with_a_body_documents_400(spec: dict[str, Any]) -> None:
    missing = [
        f"{m.upper()} {p}"
        for m, p, op in operations(spec)
        if "requestBody" in op
        and PROBLEM_JSON not in op["responses"].get("400", {}).get("content", {})
    ]

    assert missing == []


async def test_405_lists_every_method_of_the_resource(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    response = await client.options("/api/v1/users/me")

    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    documented = {m.upper() for m in spec["paths"]["/api/v1/users/me"] if m in METHODS}
    assert documented <= allowed
    assert allowed - documented <= {"HEAD"}


def assert_405_index_matches(app: Any, spec: dict[str, Any]) -> None:
    """The index of the 405's ``Allow`` header, read from the routes, has the document's
    paths in the document's order (the first match wins) and each path's methods."""
    from atrium.openapi import documented_methods

    found = documented_methods(app)
    assert list(found) == list(spec["paths"])
    documented = {
        path: {m.upper() for m in item if m in METHODS} for path, item in spec["paths"].items()
    }
    assert {path: set(methods) for path, methods in found.items()} == documented


async def test_the_405_index_lists_what_the_document_lists(app: Any, spec: dict[str, Any]) -> None:
    assert_405_index_matches(app, spec)


async def test_a_405_does_not_generate_the_document(client: httpx.AsyncClient, app: Any) -> None:
    """Generating the document takes ~0.7 s of CPU; a 405 needs only the routes."""
    response = await client.post("/api/v1/health")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert app.openapi_schema is None


async def test_patch_on_the_bulk_route_is_405_not_a_validation_error(
    client: httpx.AsyncClient, ctx: Any
) -> None:
    from tests.factories import signed_in_as

    _, admin = await signed_in_as(client, ctx, "admin@example.com", "superadmin")

    response = await client.patch("/api/v1/admin/users/bulk", json={}, headers=admin)

    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_admin_patch_refuses_a_number_for_a_boolean(
    client: httpx.AsyncClient, ctx: Any
) -> None:
    from tests.factories import signed_in, signed_in_as

    _, admin = await signed_in_as(client, ctx, "admin@example.com", "superadmin")
    await signed_in(client, "ada@example.com")
    users = (await client.get("/api/v1/admin/users", headers=admin)).json()["items"]
    ada = next(u for u in users if u["email"] == "ada@example.com")

    response = await client.patch(
        f"/api/v1/admin/users/{ada['id']}", json={"profile_verified": 0}, headers=admin
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
