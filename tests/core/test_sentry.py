"""Sentry error reporting: off without a DSN; with one, nothing secret leaves the process."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import Request
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from atrium.config import DatabaseSettings, Environment, Settings
from atrium.core.clock import FrozenClock
from atrium.core.redaction import REDACTED
from atrium.core.sentry import before_send, init_sentry
from atrium.main import create_app

CLIENT_IP = "203.0.113.7"
DSN = "https://public@127.0.0.1:9/1"
PASSWORD = "correct horse battery staple"
ACCESS_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu"
REFRESH_TOKEN = "Zm9vYmFyYmF6cXV4LXJlZnJlc2gtdG9rZW4tdmFsdWUtNDM"
COOKIE_VALUE = "session-cookie-secret-1234"


class CapturingTransport(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []
        self.init_calls: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for envelope in self.envelopes:
            event = envelope.get_event()
            if event is not None:
                out.append(event)
        return out


@pytest.fixture(autouse=True)
def reset_sentry() -> Iterator[None]:
    """Leave no Sentry client and no integration enabled for the other tests.

    sentry-sdk cannot undo what its integrations patched (httpx's client, Starlette,
    asyncpg, SQLAlchemy, redis...); a client without integrations makes every patched call
    pass straight through. A client with the default ones, as a bare ``sentry_sdk.init()``
    leaves, kept them at work: each later test of the process ran ~20 % slower."""
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)
    assert sentry_sdk.get_client().integrations == {}


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> CapturingTransport:
    """``sentry_sdk.init`` as called by Atrium, with a transport that keeps the envelopes."""
    capturing = CapturingTransport()
    real_init = sentry_sdk.init

    def init(*args: Any, **kwargs: Any) -> Any:
        capturing.init_calls.append(kwargs)
        return real_init(*args, transport=capturing, **kwargs)

    monkeypatch.setattr(sentry_sdk, "init", init)
    return capturing


def sentry_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=Environment.test,
        data_dir=tmp_path / "var",
        **extra,
    )


def realistic_event() -> dict[str, Any]:
    """An event shaped like the ones sentry-sdk builds for a failed request."""
    return {
        "level": "error",
        "exception": {"values": [{"type": "RuntimeError", "value": "boom"}]},
        "request": {
            "url": "http://atrium.test/api/v1/users/me/password",
            "method": "POST",
            "headers": {
                "Authorization": f"Bearer {ACCESS_TOKEN}",
                "Cookie": f"sid={COOKIE_VALUE}",
                "Content-Type": "application/json",
                "User-Agent": "pytest",
            },
            "cookies": {"sid": COOKIE_VALUE},
            "data": {"current_password": PASSWORD, "new_password": PASSWORD + "!"},
            "query_string": f"token={REFRESH_TOKEN}",
        },
        "extra": {"refresh_token": REFRESH_TOKEN, "attempt": 3},
        "contexts": {"auth": {"access_token": ACCESS_TOKEN, "scheme": "bearer"}},
        "breadcrumbs": {
            "values": [
                {"category": "http", "data": {"password": PASSWORD, "status": 401}},
                {"category": "log", "message": "login failed"},
            ]
        },
    }


SECRETS = [PASSWORD, ACCESS_TOKEN, ACCESS_TOKEN.split(".")[2], REFRESH_TOKEN, COOKIE_VALUE]


# --- init_sentry ----------------------------------------------------------------------------


def test_init_sentry_is_false_without_a_dsn(tmp_path: Path, transport: CapturingTransport) -> None:
    assert init_sentry(sentry_settings(tmp_path)) is False
    assert transport.init_calls == []
    assert not sentry_sdk.get_client().is_active()


def test_init_sentry_is_true_with_a_dsn(tmp_path: Path, transport: CapturingTransport) -> None:
    enabled = init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN)))

    assert enabled is True
    assert sentry_sdk.get_client().is_active()


def test_init_sentry_uses_no_deprecated_option(
    tmp_path: Path, transport: CapturingTransport
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)

        # A deprecated option would raise here (warnings are errors in this block).
        assert init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN))) is True


def test_init_sentry_installs_the_scrubbing_hook(
    tmp_path: Path, transport: CapturingTransport
) -> None:
    init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN)))

    assert sentry_sdk.get_client().options["before_send"] is before_send


def test_init_sentry_uses_the_sample_rate_setting(
    tmp_path: Path, transport: CapturingTransport
) -> None:
    init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN), sentry_sample_rate=0.25))

    assert sentry_sdk.get_client().options["sample_rate"] == 0.25


def test_init_sentry_reports_the_environment(tmp_path: Path, transport: CapturingTransport) -> None:
    init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN)))

    assert sentry_sdk.get_client().options["environment"] == "test"


def test_captured_message_is_delivered_to_the_transport(
    tmp_path: Path, transport: CapturingTransport
) -> None:
    init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN)))

    sentry_sdk.capture_message("hello from the test")
    sentry_sdk.flush()

    assert [e.get("message") for e in transport.events()] == ["hello from the test"]


def test_captured_event_leaves_the_process_without_secrets(
    tmp_path: Path, transport: CapturingTransport
) -> None:
    init_sentry(sentry_settings(tmp_path, sentry_dsn=SecretStr(DSN)))

    sentry_sdk.capture_event(realistic_event())
    sentry_sdk.flush()

    events = transport.events()
    assert len(events) == 1
    sent = json.dumps(events[0])
    for secret in SECRETS:
        assert secret not in sent


# --- an unhandled error in a request ---------------------------------------------------------


@pytest.fixture
async def reporting_client(
    tmp_path: Path, transport: CapturingTransport, sqlite_template: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with Sentry on whose ``/boom`` route fails."""
    db = tmp_path / "atrium.db"
    shutil.copy(sqlite_template, db)
    settings = sentry_settings(
        tmp_path,
        sentry_dsn=SecretStr(DSN),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{db}", auto_migrate=False),
    )
    app = create_app(settings, FrozenClock())

    @app.post("/boom")
    async def boom(request: Request) -> None:
        await request.body()
        raise RuntimeError("unexpected (test)")

    async with app.router.lifespan_context(app):
        asgi = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=asgi, base_url="http://atrium.test") as c:
            yield c


@pytest.fixture
async def report(reporting_client: httpx.AsyncClient, transport: CapturingTransport) -> str:
    """The JSON of every event sent for one failed request full of credentials."""
    response = await reporting_client.post(
        f"/boom?reset_token={REFRESH_TOKEN}",
        json={"password": PASSWORD, "refresh_token": REFRESH_TOKEN},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "Cookie": f"sid={COOKIE_VALUE}"},
    )
    sentry_sdk.flush()
    assert response.status_code == 500
    return json.dumps(transport.events())


async def test_unhandled_error_is_reported(report: str) -> None:
    assert "unexpected (test)" in report


@pytest.mark.parametrize(
    "secret",
    SECRETS,
    ids=["password", "access_token", "access_token_signature", "refresh_token", "cookie"],
)
async def test_unhandled_error_report_carries_no_credential(report: str, secret: str) -> None:
    assert secret not in report


async def test_unhandled_error_report_carries_no_client_address(report: str) -> None:
    assert CLIENT_IP not in report


# --- before_send ----------------------------------------------------------------------------


def test_before_send_redacts_the_authorization_header() -> None:
    event = before_send(realistic_event(), {})

    assert event["request"]["headers"]["Authorization"] == REDACTED


def test_before_send_redacts_the_cookie_header() -> None:
    event = before_send(realistic_event(), {})

    assert event["request"]["headers"]["Cookie"] == REDACTED


def test_before_send_keeps_harmless_headers() -> None:
    event = before_send(realistic_event(), {})

    assert event["request"]["headers"]["User-Agent"] == "pytest"


def test_before_send_drops_the_request_body() -> None:
    event = before_send(realistic_event(), {})

    assert "data" not in event["request"]


def test_before_send_drops_the_parsed_cookies() -> None:
    event = before_send(realistic_event(), {})

    assert "cookies" not in event["request"]


def test_before_send_drops_the_query_string() -> None:
    event = before_send(realistic_event(), {})

    assert "query_string" not in event["request"]


def test_before_send_redacts_secret_extra() -> None:
    event = before_send(realistic_event(), {})

    assert event["extra"] == {"refresh_token": REDACTED, "attempt": 3}


def test_before_send_redacts_secret_context_values() -> None:
    event = before_send(realistic_event(), {})

    assert event["contexts"]["auth"]["access_token"] == REDACTED


def test_before_send_redacts_breadcrumb_data() -> None:
    event = before_send(realistic_event(), {})

    crumbs = event["breadcrumbs"]["values"]
    assert crumbs[0]["data"] == {"password": REDACTED, "status": 401}
    assert crumbs[1] == {"category": "log", "message": "login failed"}


def test_before_send_keeps_the_exception() -> None:
    event = before_send(realistic_event(), {})

    assert event["exception"] == realistic_event()["exception"]


def test_before_send_leaves_no_secret_anywhere_in_the_event() -> None:
    sent = json.dumps(before_send(realistic_event(), {}))

    for secret in SECRETS:
        assert secret not in sent
