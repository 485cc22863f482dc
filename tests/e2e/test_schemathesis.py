"""Property-based API testing with schemathesis against a real server's /openapi.json.

Every documented operation is called with generated valid and invalid inputs, with and
without a valid access token. No answer may be a server error, and every answer must match
the documented status codes, content types and schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.test_server import Server

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("schemathesis"),
        (),
        env={"ATRIUM_RATE_LIMIT__ENABLED": "false", "ATRIUM_HTTP__ACCESS_LOG": "false"},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def bearer(server: Server) -> dict[str, str]:
    with httpx.Client(base_url=server.base, timeout=10) as http:
        http.post("/api/v1/auth/register", json={"email": "fuzz@example.com", "password": PASSWORD})
        r = http.post(
            "/api/v1/auth/login", data={"username": "fuzz@example.com", "password": PASSWORD}
        )
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.base}/openapi.json")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Would end the shared session for the cases that follow; they run without a token.
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/users/me")}


def _fuzz(api_schema: Any, headers: dict[str, str] | None) -> dict[str, str]:
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        if headers and (operation.method.upper(), operation.path) in SESSION_ENDING:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:2000]
    return failures


def test_api_conforms_to_its_schema_without_credentials(api_schema: Any) -> None:
    assert _fuzz(api_schema, None) == {}


def test_api_conforms_to_its_schema_with_an_access_token(
    api_schema: Any, bearer: dict[str, str]
) -> None:
    assert _fuzz(api_schema, bearer) == {}
