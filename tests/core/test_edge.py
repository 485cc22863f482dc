"""The HTTP edge: security headers, CSP, HSTS, client address behind proxies, request id,
CORS and the request body limit."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from atrium.config import HttpSettings, Settings
from atrium.context import AppContext
from tests.factories import PASSWORD, register

CLIENT_IP = "203.0.113.7"  # the address of the test client (tests/conftest.py)
EMAIL = "ada@example.com"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
SESSIONS = "/api/v1/users/me/sessions"
ORIGIN = "https://app.example.com"
GENERATED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin"}


@pytest.fixture
def http() -> HttpSettings:
    """The edge settings of the app under test; tests parametrize ``http`` to change them."""
    return HttpSettings()


@pytest.fixture
def settings(settings: Settings, http: HttpSettings) -> Settings:
    return settings.model_copy(update={"http": http})


@pytest.fixture
async def lenient_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, but an unhandled error is a 500 response, as in production."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        yield c


async def answer(
    kind: str,
    client: httpx.AsyncClient,
    ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> httpx.Response:
    """A response of the given kind, with its status checked."""
    if kind == "api_200":
        # A public route with no dependency to check: /api/v1/health answers 503 whenever
        # a check outlasts its 2 s limit, which a loaded CI machine can make happen.
        response = await client.get("/api/v1/auth/oauth/providers")
        expected = 200
    elif kind == "problem_401":
        response = await client.get("/api/v1/users/me")
        expected = 401
    elif kind == "not_found_404":
        response = await client.get("/api/v1/no/such/thing")
        expected = 404
    elif kind == "validation_422":
        response = await client.post(REGISTER, json={})
        expected = 422
    elif kind == "internal_500":
        await register(client, EMAIL)
        tokens = (await client.post(LOGIN, data={"username": EMAIL, "password": PASSWORD})).json()

        async def broken(*_: Any, **__: Any) -> Any:
            raise RuntimeError("unexpected (test)")

        monkeypatch.setattr(ctx.principals, "resolve", broken)
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        expected = 500
    elif kind == "docs":
        response = await client.get("/docs")
        expected = 200
    elif kind == "redoc":
        response = await client.get("/redoc")
        expected = 200
    else:  # pragma: no cover - a typo in a parameter list
        raise AssertionError(kind)
    assert response.status_code == expected, response.text
    return response


API_KINDS = ["api_200", "problem_401", "not_found_404", "validation_422", "internal_500"]
ALL_KINDS = [*API_KINDS, "docs", "redoc"]


def csp_directives(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as ``{directive: [sources]}``."""
    out: dict[str, list[str]] = {}
    for part in response.headers["content-security-policy"].split(";"):
        tokens = part.split()
        if tokens:
            out[tokens[0].lower()] = tokens[1:]
    return out


def sha256_source(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def inline_scripts(html: str) -> list[str]:
    """The bodies of the page's ``<script>`` elements without a ``src``."""
    return re.findall(r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", html, re.S | re.I)


async def ip_of_session_opened(client: httpx.AsyncClient, headers: dict[str, str]) -> str | None:
    """Register, log in with ``headers`` and return the session's recorded ``ip_address``."""
    await register(client, EMAIL)
    response = await client.post(
        LOGIN, data={"username": EMAIL, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200, response.text
    auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
    sessions = (await client.get(SESSIONS, headers=auth)).json()
    assert len(sessions) == 1
    ip: str | None = sessions[0]["ip_address"]
    return ip


def trusting(*proxies: str, **extra: Any) -> HttpSettings:
    return HttpSettings(trusted_proxies=list(proxies), **extra)


# --- security headers on every kind of response -------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("header", sorted(BASE_HEADERS))
async def test_security_header_is_set_on_every_kind_of_response(
    lenient_client: httpx.AsyncClient,
    ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    header: str,
) -> None:
    response = await answer(kind, lenient_client, ctx, monkeypatch)

    assert response.headers.get(header) == BASE_HEADERS[header]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_referrer_policy_never_leaks_the_url_on_every_kind_of_response(
    lenient_client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    response = await answer(kind, lenient_client, ctx, monkeypatch)

    assert response.headers.get("referrer-policy") in SAFE_REFERRER_POLICIES


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_permissions_policy_denies_powerful_features_on_every_kind_of_response(
    lenient_client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    response = await answer(kind, lenient_client, ctx, monkeypatch)

    policy = response.headers.get("permissions-policy", "")
    for feature in ("camera", "microphone", "geolocation", "payment"):
        assert f"{feature}=()" in policy


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_every_kind_of_response_has_a_request_id(
    lenient_client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    response = await answer(kind, lenient_client, ctx, monkeypatch)

    assert GENERATED_ID.match(response.headers.get("x-request-id", ""))


@pytest.mark.parametrize("kind", API_KINDS)
async def test_api_response_has_the_strict_none_csp(
    lenient_client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    response = await answer(kind, lenient_client, ctx, monkeypatch)

    assert "content-security-policy" in response.headers
    policy = csp_directives(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive, sources in policy.items():
        if directive not in ("default-src", "frame-ancestors"):
            assert sources == ["'none'"], directive


async def test_api_response_has_exactly_one_csp_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")

    assert len(response.headers.get_list("content-security-policy")) == 1


# --- documentation pages ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_page_csp_defaults_to_none_and_allows_no_unsafe_script(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    policy = csp_directives(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    scripts = policy["script-src"]
    assert "'self'" in scripts
    assert all(s == "'self'" or s.startswith("'sha256-") for s in scripts), scripts


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_page_has_exactly_one_csp_header(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert len(response.headers.get_list("content-security-policy")) == 1


async def test_swagger_ui_csp_hash_matches_the_inline_script_of_the_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs")

    scripts = inline_scripts(response.text)
    assert scripts, "Swagger UI is bootstrapped by an inline script"
    hashes = {s for s in csp_directives(response)["script-src"] if s.startswith("'sha256-")}
    assert hashes == {sha256_source(s) for s in scripts}


async def test_swagger_ui_csp_connects_only_to_its_own_origin(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert csp_directives(response)["connect-src"] == ["'self'"]


async def test_redoc_csp_hashes_match_the_inline_scripts_of_the_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/redoc")

    hashes = {s for s in csp_directives(response)["script-src"] if s.startswith("'sha256-")}
    assert hashes == {sha256_source(s) for s in inline_scripts(response.text)}


async def test_redoc_csp_allows_blob_workers(client: httpx.AsyncClient) -> None:
    response = await client.get("/redoc")

    assert "blob:" in csp_directives(response)["worker-src"]


async def test_swagger_ui_csp_allows_no_workers(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert "worker-src" not in csp_directives(response)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_page_loads_no_asset_from_another_origin(
    client: httpx.AsyncClient, path: str
) -> None:
    html = (await client.get(path)).text

    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
    assert urls
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls


async def test_oauth2_redirect_page_csp_hash_matches_its_inline_script(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/docs/oauth2-redirect")

    scripts = inline_scripts(response.text)
    assert scripts
    hashes = {s for s in csp_directives(response)["script-src"] if s.startswith("'sha256-")}
    assert hashes == {sha256_source(s) for s in scripts}


# --- HSTS ---------------------------------------------------------------------------------


async def test_no_hsts_over_plain_http(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert "strict-transport-security" not in response.headers


async def test_hsts_when_the_connection_itself_is_https(app: Any) -> None:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000))
    async with httpx.AsyncClient(transport=transport, base_url="https://atrium.test") as c:
        response = await c.get("/health/live")

    assert "max-age=" in response.headers.get("strict-transport-security", "")


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_hsts_when_a_trusted_proxy_says_x_forwarded_proto_https(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health/live", headers={"X-Forwarded-Proto": "https"})

    max_age = re.search(r"max-age=(\d+)", response.headers.get("strict-transport-security", ""))
    assert max_age is not None
    assert int(max_age.group(1)) >= 31_536_000


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_hsts_when_a_trusted_proxy_says_forwarded_proto_https(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/health/live", headers={"Forwarded": "for=198.51.100.9;proto=https"}
    )

    assert "max-age=" in response.headers.get("strict-transport-security", "")


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_no_hsts_when_a_trusted_proxy_says_proto_http(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Forwarded-Proto": "http"})

    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("http", [trusting("10.0.0.0/8")])
@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-Proto": "https"}, {"Forwarded": "for=198.51.100.9;proto=https"}],
    ids=["x_forwarded_proto", "forwarded"],
)
async def test_no_hsts_when_an_untrusted_client_claims_https(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/health/live", headers=headers)

    assert "strict-transport-security" not in response.headers


# --- client address behind proxies --------------------------------------------------------


async def test_client_address_is_the_peer_without_proxy_headers(
    client: httpx.AsyncClient,
) -> None:
    assert await ip_of_session_opened(client, {}) == CLIENT_IP


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_x_forwarded_for_from_a_trusted_proxy_is_the_client_address(
    client: httpx.AsyncClient,
) -> None:
    ip = await ip_of_session_opened(client, {"X-Forwarded-For": "198.51.100.9"})

    assert ip == "198.51.100.9"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_forwarded_for_from_a_trusted_proxy_is_the_client_address(
    client: httpx.AsyncClient,
) -> None:
    ip = await ip_of_session_opened(client, {"Forwarded": "for=198.51.100.9;proto=https"})

    assert ip == "198.51.100.9"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_forwarded_for_ipv6_with_port_from_a_trusted_proxy_is_the_bare_address(
    client: httpx.AsyncClient,
) -> None:
    ip = await ip_of_session_opened(client, {"Forwarded": 'for="[2001:db8:cafe::17]:4711"'})

    assert ip == "2001:db8:cafe::17"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_forwarded_for_ipv4_with_port_from_a_trusted_proxy_is_the_bare_address(
    client: httpx.AsyncClient,
) -> None:
    # RFC 7239 §6: node = nodename [ ":" node-port ].
    ip = await ip_of_session_opened(client, {"Forwarded": 'for="198.51.100.9:4711"'})

    assert ip == "198.51.100.9"


@pytest.mark.parametrize("http", [HttpSettings(), trusting("10.0.0.0/8")], ids=["none", "other"])
@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-For": "198.51.100.9"}, {"Forwarded": "for=198.51.100.9"}],
    ids=["x_forwarded_for", "forwarded"],
)
async def test_forwarding_headers_from_an_untrusted_client_are_ignored(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert await ip_of_session_opened(client, headers) == CLIENT_IP


@pytest.mark.parametrize("http", [trusting(CLIENT_IP, "10.0.0.0/8")])
async def test_right_most_untrusted_hop_is_the_client_when_several_proxies_are_trusted(
    client: httpx.AsyncClient,
) -> None:
    ip = await ip_of_session_opened(client, {"X-Forwarded-For": "1.2.3.4, 10.0.0.5"})

    assert ip == "1.2.3.4"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_untrusted_hop_before_the_trusted_proxy_is_the_client(
    client: httpx.AsyncClient,
) -> None:
    ip = await ip_of_session_opened(client, {"X-Forwarded-For": "1.2.3.4, 10.0.0.5"})

    assert ip == "10.0.0.5"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP, "10.0.0.0/8")])
async def test_right_most_untrusted_forwarded_for_is_the_client_when_several_proxies_are_trusted(
    client: httpx.AsyncClient,
) -> None:
    ip = await ip_of_session_opened(client, {"Forwarded": "for=1.2.3.4, for=10.0.0.5"})

    assert ip == "1.2.3.4"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_spoofed_left_most_x_forwarded_for_is_ignored(client: httpx.AsyncClient) -> None:
    # The real client 198.51.100.9 sent "X-Forwarded-For: 6.6.6.6"; the proxy appended it.
    ip = await ip_of_session_opened(client, {"X-Forwarded-For": "6.6.6.6, 198.51.100.9"})

    assert ip == "198.51.100.9"


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_malformed_forwarded_address_from_a_trusted_proxy_is_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    await register(client, EMAIL)

    response = await client.post(
        LOGIN,
        data={"username": EMAIL, "password": PASSWORD},
        headers={"X-Forwarded-For": "not an address, ;;"},
    )

    assert response.status_code == 200


# --- request id from proxies only ---------------------------------------------------------


@pytest.mark.parametrize("http", [trusting(CLIENT_IP)])
async def test_request_id_from_a_trusted_proxy_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "proxy-id-42"})

    assert response.headers["x-request-id"] == "proxy-id-42"


@pytest.mark.parametrize("http", [HttpSettings(), trusting("10.0.0.0/8")], ids=["none", "other"])
async def test_request_id_from_an_untrusted_client_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "client-id-42"})

    assert response.headers["x-request-id"] != "client-id-42"
    assert GENERATED_ID.match(response.headers["x-request-id"])


# --- CORS ---------------------------------------------------------------------------------

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "Authorization, Content-Type",
}
WITH_CORS = HttpSettings(cors_origins=[ORIGIN])


@pytest.mark.parametrize("http", [WITH_CORS])
async def test_cors_preflight_from_an_allowed_origin_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.options(LOGIN, headers={"Origin": ORIGIN, **PREFLIGHT})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed


@pytest.mark.parametrize("http", [WITH_CORS])
async def test_cors_response_to_an_allowed_origin_exposes_request_id_and_rate_limit_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health/live", headers={"Origin": ORIGIN})

    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "x-request-id",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    } <= set(exposed)


@pytest.mark.parametrize("http", [WITH_CORS])
async def test_cors_preflight_from_another_origin_gets_no_allow_origin(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(LOGIN, headers={"Origin": "https://evil.example", **PREFLIGHT})

    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("http", [WITH_CORS])
async def test_cors_response_to_another_origin_gets_no_allow_origin(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health/live", headers={"Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("http", [WITH_CORS])
async def test_cors_preflight_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.options(LOGIN, headers={"Origin": ORIGIN, **PREFLIGHT})

    assert response.headers["x-content-type-options"] == "nosniff"
    assert GENERATED_ID.match(response.headers.get("x-request-id", ""))


async def test_no_cors_headers_on_a_preflight_without_an_allow_list(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(LOGIN, headers={"Origin": ORIGIN, **PREFLIGHT})

    assert not [h for h in response.headers if h.startswith("access-control-")]


async def test_no_cors_headers_on_a_response_without_an_allow_list(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health/live", headers={"Origin": ORIGIN})

    assert not [h for h in response.headers if h.startswith("access-control-")]


# --- request body limit -------------------------------------------------------------------

JSON = "application/json"
SMALL_BODY = HttpSettings(max_body_bytes=2048)
CHUNK = b"a" * 512
CHUNKS = 200  # 100 KiB in all: far past the limit


class Body:
    """A request body of CHUNKS chunks that counts how many were read."""

    def __init__(self) -> None:
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(CHUNKS):
            self.consumed += 1
            yield CHUNK


def assert_payload_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert body["status"] == 413


@pytest.mark.parametrize("http", [SMALL_BODY])
@pytest.mark.parametrize(
    ("url", "content_type"),
    [(REGISTER, "application/json"), (LOGIN, "application/x-www-form-urlencoded")],
    ids=["json", "form"],
)
async def test_body_larger_than_the_limit_with_content_length_is_413_problem(
    client: httpx.AsyncClient, url: str, content_type: str
) -> None:
    response = await client.post(url, content=b"a" * 5000, headers={"Content-Type": content_type})

    assert_payload_too_large(response)


@pytest.mark.parametrize("http", [SMALL_BODY])
@pytest.mark.parametrize(
    ("url", "content_type"),
    [(REGISTER, "application/json"), (LOGIN, "application/x-www-form-urlencoded")],
    ids=["json", "form"],
)
async def test_chunked_body_larger_than_the_limit_is_413_problem(
    client: httpx.AsyncClient, url: str, content_type: str
) -> None:
    body = Body()

    response = await client.post(url, content=body, headers={"Content-Type": content_type})

    assert "content-length" not in response.request.headers
    assert_payload_too_large(response)


@pytest.mark.parametrize("http", [SMALL_BODY])
async def test_chunked_body_is_refused_before_it_is_read_to_the_end(
    client: httpx.AsyncClient,
) -> None:
    body = Body()

    response = await client.post(
        REGISTER, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    # 2048 bytes fit in 4 chunks of 512: the fifth crosses the limit.
    assert body.consumed <= 5


@pytest.mark.parametrize("http", [SMALL_BODY])
async def test_declared_content_length_over_the_limit_is_refused_before_reading_the_body(
    client: httpx.AsyncClient,
) -> None:
    body = Body()

    response = await client.post(
        REGISTER,
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(CHUNKS * len(CHUNK))},
    )

    assert_payload_too_large(response)
    assert body.consumed <= 1


@pytest.mark.parametrize("http", [SMALL_BODY])
async def test_body_too_large_response_has_security_headers_and_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        REGISTER, content=b"a" * 5000, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert GENERATED_ID.match(response.headers.get("x-request-id", ""))


@pytest.mark.parametrize("http", [SMALL_BODY])
async def test_body_within_the_limit_is_served(client: httpx.AsyncClient) -> None:
    response = await client.post(REGISTER, json={"email": EMAIL, "password": PASSWORD})

    assert response.status_code == 201, response.text
