"""Property-based API testing with schemathesis against a real server's /openapi.json.

Every documented operation is called with generated valid and invalid inputs, without
credentials, as a user and as an admin, under every check schemathesis has (`--checks
all`: server errors, status codes, content types, headers, schemas, negative data
rejected, positive data accepted, `Allow` on 405 …). The number of examples per operation
is bounded so that the run stays a few minutes in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import schemathesis.specs.openapi.checks
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig

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
def admin_bearer(server: Server) -> dict[str, str]:
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.post(
            "/api/v1/auth/login",
            data={"username": "root@example.com", "password": "a long admin passphrase"},
        )
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


# Schema-valid requests may still be refused with 400 where a value is an opaque token the
# server issued (a pagination cursor: 400 `invalid_cursor`; an emailed link's token: 400
# `invalid_token`): no schema can say which random strings are tokens the server made.
# Every other refusal of schema-valid data (422 included) still fails the run (5xx are
# the not_a_server_error check's to report); forged
# cursors and tokens have tests of their own (tests/core/test_pagination.py,
# tests/verification/).
ACCEPTED = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
# A new password may also be refused with 422 `weak_password` for what no schema can list:
# a commonly used password, or one that is little more than the email address (the
# lengths are in the schema).
NEW_PASSWORD_OPERATIONS = [
    "/api/v1/auth/register",
    "/api/v1/auth/password/reset",
    "/api/v1/users/me/password",
]
# Uploads are judged by their bytes (the type sniffed from the content, an empty file, an
# image that does not decode): 415 and 422 are the documented answers to a schema-valid
# multipart body whose content is refused.
UPLOAD_OPERATIONS = ["/api/v1/users/me/avatar", "/api/v1/files"]
# An identity provider's fields depend on each other in ways JSON Schema does not state
# (an OpenID provider needs an issuer or a preset): 422 `invalid_provider_config` and, for
# a change, 422 `validation_error` of the provider it would make.
PROVIDER_OPERATIONS = [
    "/api/v1/admin/identity-providers",
    "/api/v1/admin/identity-providers/{provider_id}",
    # An import file is judged row by row (every row valid, or nothing imported: 422 with
    # the errors by line), like an upload's bytes.
    "/api/v1/admin/users/import",
    # An API key's scopes must be permissions the owner holds (403 `scope_not_held`) of the
    # catalogue, which the applications listed in ATRIUM_APPS extend (422 `unknown_scope`);
    # its lifetime is capped by a setting (422 `validation_error`).
    "/api/v1/users/me/api-keys",
    # One proof of exactly one kind (a code, a recovery code or a passkey assertion): the
    # members depend on each other (422 `validation_error`).
    "/api/v1/auth/mfa/verify",
    "/api/v1/auth/step-up",
    # A WebAuthn assertion is judged by its decoded contents (422 for a credential that
    # does not parse).
    "/api/v1/auth/passkey/login",
    # A webhook URL that resolves to a refused address (SSRF defences) and event-type
    # patterns that match no type of the catalogue are 422.
    "/api/v1/admin/webhooks",
    # A broadcast to a role needs an existing role (422).
    "/api/v1/admin/notifications/broadcast",
    # A date range is judged as a whole: `from` after `to`, or longer than the longest
    # range the report serves, is 422.
    "/api/v1/users/me/activity",
    "/api/v1/admin/users/{user_id}/activity",
    "/api/v1/admin/analytics",
]
# The live notices (server-sent events) never end on their own: schemathesis reads a
# stream until its request timeout passes (10 s by default, with the server's heartbeat
# every 15 s: ~40 s of the three runs spent waiting on four streams). Two seconds still
# reads the response's status and headers and what the stream sends first.
STREAM_OPERATIONS = ["/api/v1/users/me/notifications/stream"]
STREAM_READ_SECONDS = 2
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
        "operations": [
            {"include-path": path, "request-timeout": STREAM_READ_SECONDS}
            for path in STREAM_OPERATIONS
        ]
        + [
            {
                "include-path": path,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
            }
            for path in NEW_PASSWORD_OPERATIONS
        ]
        + [
            {
                "include-path": path,
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "415", "422"]}
                },
            }
            for path in UPLOAD_OPERATIONS
        ]
        + [
            {
                "include-path": path,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
            }
            for path in PROVIDER_OPERATIONS
        ],
    }
)


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.base}/openapi.json", config=CONFIG)


ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]
EXAMPLES_PER_OPERATION = 10
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
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=ALL_CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
            parts = getattr(exc, "exceptions", None) or [exc]
            detail = "\n".join(str(part) for part in parts)
            failures[f"{operation.method.upper()} {operation.path}"] = detail[:2000]
    assert failures == {}, "\n\n".join(f"{op}:\n{why}" for op, why in failures.items())
    return failures


def test_api_conforms_to_its_schema_without_credentials(api_schema: Any) -> None:
    assert _fuzz(api_schema, None) == {}


def test_api_conforms_to_its_schema_with_an_access_token(
    api_schema: Any, bearer: dict[str, str]
) -> None:
    assert _fuzz(api_schema, bearer) == {}


def test_api_conforms_to_its_schema_as_an_admin(
    api_schema: Any, admin_bearer: dict[str, str]
) -> None:
    assert _fuzz(api_schema, admin_bearer) == {}


def test_only_the_notices_stream_is_read_for_two_seconds(api_schema: Any) -> None:
    stream = api_schema["/api/v1/users/me/notifications/stream"]["GET"]
    other = api_schema["/api/v1/users/me"]["GET"]

    assert api_schema.config.request_timeout_for(operation=stream) == STREAM_READ_SECONDS
    assert api_schema.config.request_timeout_for(operation=other) is None  # the 10-s default
