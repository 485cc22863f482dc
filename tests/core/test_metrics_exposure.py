"""``/metrics`` in production: only behind a token or on a listener of its own; a server
that would publish it to anyone on the API port refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from atrium.config import Environment, MetricsSettings, Settings, metrics_exposure_problem
from atrium.main import create_app, create_metrics_app

ATRIUM = str(Path(sys.executable).with_name("atrium"))
PRODUCTION_ENV = {
    "ATRIUM_ENVIRONMENT": "production",
    "ATRIUM_DATABASE__URL": "postgresql+asyncpg://atrium@127.0.0.1:1/atrium",
    "ATRIUM_AUTH__SIGNING_KEY_FILE": "/nonexistent/signing_key.pem",
    "ATRIUM_MAIL__SMTP_HOST": "127.0.0.1",
    "ATRIUM_MAIL__LINK_BASE_URL": "https://id.example.com",
    "ATRIUM_API_KEYS__HMAC_SECRET": "a-test-api-key-hmac-secret",
}


def production(settings: Settings, **metrics: Any) -> Settings:
    return settings.model_copy(
        update={"environment": Environment.production, "metrics": MetricsSettings(**metrics)}
    )


def test_production_with_public_metrics_is_a_configuration_problem(settings: Settings) -> None:
    problem = metrics_exposure_problem(production(settings))

    assert problem is not None
    assert "ATRIUM_METRICS__TOKEN" in problem
    assert "ATRIUM_METRICS__PORT" in problem


@pytest.mark.parametrize(
    "metrics",
    [{"token": SecretStr("a-metrics-token-0123456789")}, {"port": 9464}, {"enabled": False}],
    ids=["token", "own-port", "disabled"],
)
def test_production_with_protected_metrics_is_accepted(
    settings: Settings, metrics: dict[str, Any]
) -> None:
    assert metrics_exposure_problem(production(settings, **metrics)) is None


def test_development_may_serve_public_metrics(settings: Settings) -> None:
    assert metrics_exposure_problem(settings) is None


def test_the_application_refuses_to_be_built_with_public_metrics_in_production(
    settings: Settings,
) -> None:
    with pytest.raises(RuntimeError, match="ATRIUM_METRICS__TOKEN"):
        create_app(production(settings))


def test_serve_refuses_to_start_in_production_with_public_metrics_in_one_line(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
    env |= PRODUCTION_ENV | {"ATRIUM_DATA_DIR": str(tmp_path / "var")}

    result = subprocess.run(
        [ATRIUM, "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ATRIUM_METRICS__PORT" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


async def test_with_a_metrics_port_the_api_serves_no_metrics(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"metrics": MetricsSettings(port=9464)})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            response = await c.get("/metrics")

    assert response.status_code == 404


async def test_the_metrics_listener_serves_the_exposition(settings: Settings) -> None:
    settings = settings.model_copy(update={"metrics": MetricsSettings(port=9464)})
    app = create_metrics_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            response = await c.get("/metrics")
            api = await c.get("/api/v1/users/me")

    assert response.status_code == 200
    assert "atrium_outbox_messages" in response.text
    assert api.status_code == 404


async def test_the_metrics_listener_still_requires_the_token_when_set(settings: Settings) -> None:
    metrics = MetricsSettings(port=9464, token=SecretStr("a-metrics-token-0123456789"))
    app = create_metrics_app(settings.model_copy(update={"metrics": metrics}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            anonymous = await c.get("/metrics")
            scraper = await c.get(
                "/metrics", headers={"Authorization": "Bearer a-metrics-token-0123456789"}
            )

    assert anonymous.status_code == 401
    assert scraper.status_code == 200
