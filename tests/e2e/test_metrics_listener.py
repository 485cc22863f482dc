"""``atrium serve`` with ``ATRIUM_METRICS__PORT``: metrics of the API processes are served
on their own listener, and the API port has no ``/metrics``."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_server import Server, _free_port

pytestmark = pytest.mark.e2e


def scrape(url: str) -> httpx.Response:
    """The listener's answer, once its process has started (it starts beside the API)."""
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as http:  # one client: each new one loads the CA bundle
        while True:
            try:
                return http.get(url)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_are_served_on_their_own_port_only(tmp_path: Path, workers: str) -> None:
    metrics_port = _free_port()
    server = Server(
        tmp_path,
        ("--workers", workers),
        env={"ATRIUM_METRICS__PORT": str(metrics_port)},
    )
    try:
        for _ in range(5):
            assert httpx.get(f"{server.base}/health/live", timeout=5).status_code == 200
        on_api = httpx.get(f"{server.base}/metrics", timeout=5)
        scraped = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        server.stop()

    assert on_api.status_code == 404
    assert scraped.status_code == 200
    assert 'atrium_http_requests_total{method="GET",route="/health/live",status="200"}' in (
        scraped.text
    )
