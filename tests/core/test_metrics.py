"""``/metrics``: Prometheus exposition, the counters moving after auth traffic, the
optional bearer token and the off switch."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from atrium.config import MetricsSettings, Settings
from atrium.core.clock import FrozenClock
from tests.factories import PASSWORD, login, register

EMAIL = "ada@example.com"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metrics_settings() -> MetricsSettings:
    return MetricsSettings()


@pytest.fixture
def settings(settings: Settings, metrics_settings: MetricsSettings) -> Settings:
    return settings.model_copy(update={"metrics": metrics_settings})


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over every series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@dataclass
class Traffic:
    before: Samples
    after: Samples

    def delta(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)

    def delta_total(self, name: str, **labels: str) -> float:
        return total(self.after, name, **labels) - total(self.before, name, **labels)


@pytest.fixture
async def traffic(client: httpx.AsyncClient) -> Traffic:
    """One registration, one good and one bad login, two /me, a refresh and a reuse."""
    before = await scrape(client)
    await register(client, EMAIL)
    tokens = await login(client, EMAIL)
    bad = await client.post(
        "/api/v1/auth/login", data={"username": EMAIL, "password": "wrong password!"}
    )
    assert bad.status_code == 401
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    for _ in range(2):
        assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    reused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert reused.json()["code"] == "refresh_token_reused"
    return Traffic(before, await scrape(client))


# --- exposition -----------------------------------------------------------------------------


async def test_metrics_is_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE atrium_http_requests_total counter" in response.text
    assert list(text_string_to_metric_families(response.text))


@pytest.mark.parametrize(
    "family",
    [
        "atrium_http_requests",
        "atrium_http_request_duration_seconds",
        "atrium_logins",
        "atrium_registrations",
        "atrium_token_refreshes",
        "atrium_rate_limit_rejections",
        "atrium_rate_limit_backend_errors",
        "atrium_cache_lookups",
        "atrium_db_pool_connections_in_use",
        "atrium_db_pool_overflow",
        "atrium_db_pool_size",
        "atrium_outbox_oldest_pending_age_seconds",
        "atrium_health_check_up",
    ],
)
async def test_metric_family_is_exposed(client: httpx.AsyncClient, family: str) -> None:
    response = await client.get("/metrics")

    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert family in names


async def test_db_pool_connections_in_use_has_a_value(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)

    in_use = [v for (n, _), v in samples.items() if n == "atrium_db_pool_connections_in_use"]
    assert len(in_use) == 1
    assert in_use[0] >= 0


async def test_db_pool_size_is_the_configured_size(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    if settings.database_url.startswith("sqlite"):
        pytest.skip("the embedded SQLite engine keeps SQLAlchemy's default pool")
    samples = await scrape(client)

    size = value(samples, "atrium_db_pool_size")
    assert size == settings.database.pool_size


# --- counters move after traffic ------------------------------------------------------------


async def test_request_counter_counts_each_request_by_route_and_status(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    for _ in range(3):
        await client.get("/health/live")

    after = await scrape(client)

    labels = {"method": "GET", "route": "/health/live", "status": "200"}
    assert value(after, "atrium_http_requests_total", **labels) - value(
        before, "atrium_http_requests_total", **labels
    ) == pytest.approx(3)


@pytest.mark.parametrize(
    ("method", "route", "status"),
    [
        ("POST", "/api/v1/auth/register", "201"),
        ("POST", "/api/v1/auth/login", "200"),
        ("POST", "/api/v1/auth/login", "401"),
        ("GET", "/api/v1/users/me", "200"),
        ("POST", "/api/v1/auth/refresh", "401"),
    ],
)
async def test_request_counter_moves_under_the_api_route_template(
    traffic: Traffic, method: str, route: str, status: str
) -> None:
    moved = traffic.delta("atrium_http_requests_total", method=method, route=route, status=status)

    assert moved >= 1


async def test_request_duration_histogram_moves_under_the_api_route_template(
    traffic: Traffic,
) -> None:
    moved = traffic.delta(
        "atrium_http_request_duration_seconds_bucket",
        method="POST",
        route="/api/v1/auth/login",
        status="200",
        le="+Inf",
    )

    assert moved == 1


async def test_request_duration_histogram_counts_requests(client: httpx.AsyncClient) -> None:
    labels = {"method": "GET", "route": "/health/live", "status": "200"}
    before = await scrape(client)

    await client.get("/health/live")

    after = await scrape(client)
    name = "atrium_http_request_duration_seconds_count"
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    bucket = "atrium_http_request_duration_seconds_bucket"
    assert (
        value(after, bucket, le="+Inf", **labels) - value(before, bucket, le="+Inf", **labels) == 1
    )


async def test_unmatched_path_is_counted_under_one_label_not_the_raw_path(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/no/such/path/8f2c1e")

    samples = await scrape(client)

    routes = {dict(ls).get("route") for (n, ls), _ in samples.items()}
    assert "/no/such/path/8f2c1e" not in routes


async def test_successful_login_is_counted(traffic: Traffic) -> None:
    assert traffic.delta("atrium_logins_total", outcome="success") == 1


async def test_failed_login_is_counted(traffic: Traffic) -> None:
    assert traffic.delta("atrium_logins_total", outcome="failure") == 1


async def test_registration_is_counted(traffic: Traffic) -> None:
    assert traffic.delta("atrium_registrations_total") == 1


async def test_refused_registration_is_not_counted(client: httpx.AsyncClient) -> None:
    await register(client, EMAIL)
    before = await scrape(client)

    taken = await client.post("/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD})

    assert taken.status_code == 409
    after = await scrape(client)
    assert value(after, "atrium_registrations_total") == value(before, "atrium_registrations_total")


async def test_token_refresh_is_counted(traffic: Traffic) -> None:
    assert traffic.delta("atrium_token_refreshes_total", outcome="success") == 1


async def test_refresh_token_reuse_is_counted(traffic: Traffic) -> None:
    assert traffic.delta("atrium_token_refreshes_total", outcome="reused") == 1


async def test_cache_lookups_are_counted(traffic: Traffic) -> None:
    assert traffic.delta_total("atrium_cache_lookups_total", cache="principal") >= 2


async def test_second_lookup_of_a_principal_is_a_cache_hit(traffic: Traffic) -> None:
    assert traffic.delta("atrium_cache_lookups_total", cache="principal", result="hit") >= 1


async def test_outbox_backlog_age_is_zero_when_nothing_is_pending(
    client: httpx.AsyncClient,
) -> None:
    samples = await scrape(client)

    assert value(samples, "atrium_outbox_oldest_pending_age_seconds") == 0


async def test_outbox_backlog_age_is_how_late_the_oldest_pending_message_is(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(client, EMAIL)  # queues the verification email, due now
    clock.advance(seconds=90)
    await register(client, "grace@example.com")  # due 90 s later: not the oldest

    clock.advance(seconds=30)
    samples = await scrape(client)

    assert value(samples, "atrium_outbox_messages", state="pending") == 2
    assert value(samples, "atrium_outbox_oldest_pending_age_seconds") == 120


async def test_readiness_outcome_of_each_dependency_is_a_gauge(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/ready")).status_code == 200

    samples = await scrape(client)

    assert value(samples, "atrium_health_check_up", check="database") == 1
    assert value(samples, "atrium_health_check_up", check="storage") == 1


# --- protection and off switch --------------------------------------------------------------

WITH_TOKEN = MetricsSettings(token=SecretStr(METRICS_TOKEN))


@pytest.mark.parametrize("metrics_settings", [WITH_TOKEN])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": METRICS_TOKEN},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
    ],
    ids=["none", "wrong", "longer", "no_scheme", "basic"],
)
async def test_metrics_without_the_right_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "atrium_" not in response.text


@pytest.mark.parametrize("metrics_settings", [WITH_TOKEN])
async def test_metrics_with_the_right_bearer_token_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert response.status_code == 200
    assert "atrium_http_requests_total" in response.text


@pytest.mark.parametrize("metrics_settings", [MetricsSettings(enabled=False)])
async def test_metrics_is_404_when_disabled(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 404


async def test_metrics_is_not_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    assert "/metrics" not in schema["paths"]


@pytest.mark.parametrize(
    "path",
    ["/docs-assets/probe-7f3a/probe-9c1d.css", "/docs-assets/probe-7f3a/x/y/probe-9c1d.js"],
    ids=["two_levels", "four_levels"],
)
async def test_route_label_never_contains_raw_path_segments(
    client: httpx.AsyncClient, path: str
) -> None:
    await client.get(path)

    samples = await scrape(client)

    routes = {dict(ls).get("route") or "" for (n, ls), _ in samples.items()}
    assert not [r for r in routes if "probe-" in r]
