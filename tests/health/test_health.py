"""Health endpoints, behaviour with the database down, and the X-Request-ID header."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from atrium import __version__
from atrium.config import AuthSettings, DatabaseSettings, Environment, HttpSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from tests.conftest import FAST_ARGON2
from tests.factories import PASSWORD, login, register
from tests.mailbox import SmtpSink, free_port, smtp_settings
from tests.mailbox import smtp_server as smtp_server  # the fixture

READY_PATHS = ["/health/ready", "/api/v1/health"]
GENERATED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# --- liveness and readiness --------------------------------------------------------------


async def test_live_is_200_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", READY_PATHS)
async def test_ready_is_200_with_version_uptime_and_database_ok(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert isinstance(body["uptime_seconds"], int | float)
    assert body["uptime_seconds"] >= 0
    assert body["checks"]["database"]["status"] == "ok"


async def test_ready_checks_redis_only_when_it_is_configured(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    checks = (await client.get("/health/ready")).json()["checks"]

    if ctx.settings.redis.url:
        assert checks["redis"]["status"] == "ok"
    else:
        assert set(checks) == {"database", "storage"}


async def test_ready_checks_the_storage(client: httpx.AsyncClient) -> None:
    checks = (await client.get("/health/ready")).json()["checks"]

    assert checks["storage"]["status"] == "ok"


async def test_ready_is_503_when_the_storage_is_down(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atrium.core.storage import StorageError

    async def down() -> None:
        raise StorageError("unreachable")

    monkeypatch.setattr(ctx.storage, "ping", down)

    response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == {
        "status": "down",
        "latency_ms": response.json()["checks"]["storage"]["latency_ms"],
        "error": "StorageError",
    }


async def test_ready_is_503_when_the_cache_is_down(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not ctx.settings.redis.url:
        pytest.skip("the in-process cache cannot be down; Redis is configured for postgresql")

    async def down() -> None:
        raise ConnectionError("redis down (test)")

    monkeypatch.setattr(ctx.cache, "ping", down)
    response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"] == "down"


# --- database unreachable ----------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung database)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


UNREACHABLE = ["refused", "unresolvable_host", "no_answer"]


@pytest.fixture(params=UNREACHABLE)
def unreachable_url(request: pytest.FixtureRequest) -> str:
    if request.param == "refused":
        return "postgresql+asyncpg://postgres@127.0.0.1:1/x"
    if request.param == "unresolvable_host":
        return "postgresql+asyncpg://postgres@atrium-db.invalid:5432/x"
    port = request.getfixturevalue("silent_server")
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"


@pytest.fixture
async def down_client(unreachable_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose PostgreSQL cannot be reached."""
    settings = Settings(
        _env_file=None,
        environment=Environment.test,
        data_dir=tmp_path / "var",
        database=DatabaseSettings(
            url=unreachable_url,
            auto_migrate=False,
            # A database that never answers costs each test two connection attempts
            # (start-up and the request): short, since nothing here waits for a reply.
            pool_timeout_seconds=0.2,
            connect_timeout_seconds=0.2,
        ),
        auth=AuthSettings(**FAST_ARGON2, hash_concurrency=4),
    )
    app = create_app(settings, FrozenClock())
    async with app.router.lifespan_context(app):
        # raise_app_exceptions=False: an unhandled error is the client's 500, as in production.
        transport = httpx.ASGITransport(
            app=app, client=("203.0.113.7", 51000), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            yield c


@pytest.mark.parametrize("path", READY_PATHS)
async def test_ready_is_503_with_database_down_when_it_is_unreachable(
    down_client: httpx.AsyncClient, path: str
) -> None:
    response = await down_client.get(path)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] != "ok"
    assert body["checks"]["database"]["status"] == "down"


async def test_live_is_200_when_the_database_is_unreachable(
    down_client: httpx.AsyncClient,
) -> None:
    response = await down_client.get("/health/live")

    assert response.status_code == 200


DB_REQUESTS: dict[str, dict[str, Any]] = {
    "register": {
        "url": "/api/v1/auth/register",
        "json": {"email": "ada@example.com", "password": PASSWORD},
    },
    "login": {
        "url": "/api/v1/auth/login",
        "data": {"username": "ada@example.com", "password": PASSWORD},
    },
    "refresh": {"url": "/api/v1/auth/refresh", "json": {"refresh_token": "x" * 43}},
}


@pytest.mark.parametrize("name", list(DB_REQUESTS))
async def test_request_needing_the_database_is_503_service_unavailable_when_unreachable(
    down_client: httpx.AsyncClient, name: str
) -> None:
    response = await down_client.post(**DB_REQUESTS[name])

    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0


# --- X-Request-ID ------------------------------------------------------------------------


@pytest.fixture
async def lenient_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, but an unhandled error is a 500 response instead of an exception."""
    transport = httpx.ASGITransport(
        app=app, client=("203.0.113.7", 51000), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        yield c


RESPONSES: dict[str, tuple[str, str, dict[str, Any], int]] = {
    "live": ("GET", "/health/live", {}, 200),
    "ready": ("GET", "/api/v1/health", {}, 200),
    "not_found": ("GET", "/no/such/path", {}, 404),
    "method_not_allowed": ("PUT", "/health/live", {}, 405),
    "not_authenticated": ("GET", "/api/v1/users/me", {}, 401),
    "invalid_token": (
        "GET",
        "/api/v1/users/me",
        {"headers": {"Authorization": "Bearer nope"}},
        401,
    ),
    "validation_error": ("POST", "/api/v1/auth/register", {"json": {}}, 422),
    "docs": ("GET", "/docs", {}, 200),
}


@pytest.mark.parametrize("name", list(RESPONSES))
async def test_every_response_has_a_request_id(client: httpx.AsyncClient, name: str) -> None:
    method, url, kwargs, status = RESPONSES[name]

    response = await client.request(method, url, **kwargs)

    assert response.status_code == status
    assert GENERATED_ID.match(response.headers.get("x-request-id", ""))


async def test_unexpected_error_response_has_a_request_id(
    lenient_client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(lenient_client, "ada@example.com")
    auth = bearer(await login(lenient_client, "ada@example.com"))

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("unexpected (test)")

    monkeypatch.setattr(ctx.principals, "resolve", broken)
    response = await lenient_client.get("/api/v1/users/me", headers=auth)

    assert response.status_code == 500
    assert GENERATED_ID.match(response.headers.get("x-request-id", ""))


@pytest.mark.parametrize("unreachable_url", ["refused"], indirect=True)
async def test_database_unavailable_response_has_a_request_id(
    down_client: httpx.AsyncClient,
) -> None:
    response = await down_client.post(**DB_REQUESTS["register"])

    assert GENERATED_ID.match(response.headers.get("x-request-id", ""))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test client (203.0.113.7) is a trusted proxy here, so its request ids count."""
    return settings.model_copy(update={"http": HttpSettings(trusted_proxies=["203.0.113.0/24"])})


@pytest.mark.parametrize(
    "request_id",
    ["abc-123", "req.2026-11-21T09:00:00Z_x", "A" * 128],
    ids=["simple", "punctuation", "max_length"],
)
async def test_well_formed_incoming_request_id_is_echoed(
    client: httpx.AsyncClient, request_id: str
) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": request_id})

    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["has spaces in it", "a" * 129, "a" * 200, "", "semi;colon", "caf\xe9", "<script>"],
    ids=["spaces", "129_chars", "200_chars", "empty", "semicolon", "non_ascii", "markup"],
)
async def test_malformed_incoming_request_id_is_replaced(
    client: httpx.AsyncClient, request_id: str
) -> None:
    raw = [(b"X-Request-ID", request_id.encode("latin-1"))]
    response = await client.get("/health/live", headers=raw)

    echoed = response.headers["x-request-id"]
    assert echoed != request_id
    assert GENERATED_ID.match(echoed)


async def test_each_request_gets_its_own_generated_request_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/health/live")).headers["x-request-id"] for _ in range(3)}

    assert len(ids) == 3


async def test_response_has_exactly_one_request_id_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})

    assert response.headers.get_list("x-request-id") == ["abc-123"]


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"


async def test_grafana_dashboard_uses_only_metrics_that_exist(client: httpx.AsyncClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(atrium_[a-z_]+?)(?:_bucket)?\b", e)}
    exposition = (await client.get("/metrics")).text
    declared = set(re.findall(r"^# TYPE (atrium_[a-z_]+) ", exposition, re.M))
    assert used
    assert used - declared == set()


async def test_ready_reports_smtp_when_configured(
    settings: Settings, clock: FrozenClock, smtp_server: SmtpSink
) -> None:
    app = create_app(smtp_settings(settings, smtp_server.port), clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            body = (await c.get("/health/ready")).json()
    assert body["checks"]["smtp"]["status"] == "ok"


async def test_ready_is_503_when_the_configured_smtp_server_is_down(
    settings: Settings, clock: FrozenClock
) -> None:
    app = create_app(smtp_settings(settings, free_port()), clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            response = await c.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["smtp"]["status"] == "down"
