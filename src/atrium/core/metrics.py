"""Prometheus metrics (prometheus-client).

Names follow the Prometheus conventions (``atrium_`` prefix, ``_total`` for counters,
base units: seconds). With several worker processes, ``atrium serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates every process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

HTTP_REQUESTS = Counter(
    "atrium_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "atrium_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGINS = Counter("atrium_logins_total", "Password logins by outcome.", ["outcome"])
REGISTRATIONS = Counter("atrium_registrations_total", "Accounts registered.")
REFRESHES = Counter(
    "atrium_token_refreshes_total", "Refresh-token exchanges by outcome.", ["outcome"]
)
RATE_LIMITED = Counter(
    "atrium_rate_limit_rejections_total", "Requests refused by a rate limit.", ["limit"]
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "atrium_rate_limit_backend_errors_total",
    "Rate-limit checks that could not reach their storage, by the decision taken.",
    ["decision"],
)
CACHE_LOOKUPS = Counter(
    "atrium_cache_lookups_total", "Cache lookups by cache and result.", ["cache", "result"]
)
OUTBOX_MESSAGES = Gauge(
    "atrium_outbox_messages",
    "Outbox messages by state (pending, sending, sent, failed), read at scrape time.",
    ["state"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "atrium_outbox_oldest_pending_age_seconds",
    "Seconds since the oldest pending outbox message was due (0 if none), read at scrape time.",
    multiprocess_mode="livemax",
)
EVENT_DELIVERIES = Counter(
    "atrium_event_deliveries_total",
    "Event deliveries attempted, by consumer and outcome (delivered, retry, failed).",
    ["consumer", "outcome"],
)
EVENT_DELIVERY_STATES = Gauge(
    "atrium_event_delivery_rows",
    "Event deliveries by consumer and state (pending, delivering, delivered, failed),"
    " read at scrape time.",
    ["consumer", "state"],
    multiprocess_mode="livemax",
)
EVENTS_UNDISPATCHED = Gauge(
    "atrium_events_undispatched",
    "Events not yet fanned out to their consumers, read at scrape time.",
    multiprocess_mode="livemax",
)
EVENTS_OLDEST_PENDING_AGE = Gauge(
    "atrium_events_oldest_pending_age_seconds",
    "Seconds since the oldest undelivered event or delivery became due (0 if none),"
    " read at scrape time.",
    multiprocess_mode="livemax",
)
WEBHOOK_ATTEMPTS = Counter(
    "atrium_webhook_attempts_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed, skipped).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_LATENCY = Histogram(
    "atrium_webhook_attempt_duration_seconds",
    "Time from connecting to a webhook receiver to reading its answer.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "atrium_webhook_endpoints_disabled_total",
    "Webhook endpoints disabled after consecutive failed deliveries.",
)
JOB_LAST_RUN = Gauge(
    "atrium_job_last_run_timestamp_seconds",
    "When each scheduled job last ran (Unix time), read from job_run at scrape time.",
    ["job"],
    multiprocess_mode="livemax",
)
JOB_LAST_DURATION = Gauge(
    "atrium_job_last_duration_seconds",
    "How long each scheduled job's last run took, read at scrape time.",
    ["job"],
    multiprocess_mode="livemax",
)
JOB_LAST_OK = Gauge(
    "atrium_job_last_run_ok",
    "1 when each scheduled job's last run succeeded, 0 when it failed.",
    ["job"],
    multiprocess_mode="livemin",
)
JOB_FAILURES = Gauge(
    "atrium_job_failures",
    "Failed runs of each scheduled job since it first ran, read at scrape time.",
    ["job"],
    multiprocess_mode="livemax",
)
REALTIME_STREAMS = Gauge(
    "atrium_realtime_streams",
    "Open notification streams (SSE and WebSocket) of this process.",
    multiprocess_mode="livesum",
)
HEALTH_CHECK_UP = Gauge(
    "atrium_health_check_up",
    "Outcome of the last /health/ready check of a dependency: 1 ok, 0 down.",
    ["check"],
    multiprocess_mode="livemin",
)
DB_POOL_TIMEOUTS = Counter(
    "atrium_db_pool_timeouts_total", "Requests that waited for a database connection and gave up."
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(seconds)


class PoolCollector(Collector):
    """Database pool gauges read at scrape time from the registered engines' pools."""

    def __init__(self) -> None:
        self.pools: list[Any] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_use = GaugeMetricFamily("atrium_db_pool_connections_in_use", "Connections checked out.")
        overflow = GaugeMetricFamily(
            "atrium_db_pool_overflow", "Connections opened beyond pool_size."
        )
        size = GaugeMetricFamily("atrium_db_pool_size", "Configured pool size.")
        for pool in self.pools:
            for family, attr in ((in_use, "checkedout"), (overflow, "overflow"), (size, "size")):
                fn = getattr(pool, attr, None)
                if callable(fn):
                    family.add_metric([], max(0, fn()))
        yield from (in_use, overflow, size)


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def register_pool(pool: Any) -> None:
    POOLS.pools.append(pool)


def unregister_pool(pool: Any) -> None:
    if pool in POOLS.pools:
        POOLS.pools.remove(pool)


class GaugeCallback(Collector):
    """A gauge whose value comes from a callable at scrape time (e.g. outbox backlog)."""

    def __init__(self, name: str, documentation: str, read: Any) -> None:
        self.name, self.documentation, self.read = name, documentation, read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation)
        family.add_metric([], float(self.read()))
        yield family


def render() -> tuple[bytes, str]:
    """The exposition text (all processes when PROMETHEUS_MULTIPROC_DIR is set)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(POOLS)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
