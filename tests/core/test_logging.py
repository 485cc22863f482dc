"""Logs: no password, token or credential header ever reaches them; one access-log line per
request with method, route template, status, latency, request id and user id; ``scrub``.

The auth flow runs in a child process with the application's own logging configuration,
and its stderr is what is searched: structlog caches loggers on first use, so capturing in
this process would see whatever configuration an earlier test left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from atrium.core.redaction import REDACTED, scrub

FLOW = textwrap.dedent(
    r"""
    import asyncio, json, logging, sys
    from pathlib import Path

    import httpx
    import structlog

    from atrium.config import AuthSettings, DatabaseSettings, Environment, Settings
    from atrium.core.clock import FrozenClock
    from atrium.main import create_app

    DB, DATA, WITH_MAIL = sys.argv[1], sys.argv[2], sys.argv[3] == "mail"
    EMAIL = "ada@example.com"
    PASSWORD = "correct horse battery staple"
    NEW_PASSWORD = "a brand new horse battery"
    WRONG_PASSWORD = "definitely-wrong-secret-42"
    COOKIE = "sid=cookie-secret-value-77"

    settings = Settings(
        _env_file=None,
        environment=Environment.test,
        data_dir=Path(DATA),
        database=DatabaseSettings(url=DB, auto_migrate=False),
        auth=AuthSettings(argon2_memory_cost_kib=1024, argon2_time_cost=1),
    )
    if WITH_MAIL:
        from atrium.config import MailSettings

        settings = settings.model_copy(update={"mail": MailSettings(worker_in_api=False)})
    requests, secrets = [], {
        "password": PASSWORD, "new_password": NEW_PASSWORD, "wrong_password": WRONG_PASSWORD,
        "cookie": COOKIE.split("=", 1)[1],
    }

    async def deliver_mail(app, call):
        # Ask for a reset link, deliver the outbox (verification and reset emails) as the
        # embedded default does, and keep the tokens of the links.
        import email
        import email.policy
        import re

        from atrium.mail.transport import create_transport
        from atrium.mail.worker import MailWorker

        forgot = "/api/v1/auth/password/forgot"
        await call("forgot_password", "POST", forgot, forgot, json={"email": EMAIL})
        ctx = app.state.ctx
        worker = MailWorker(ctx.sessionmaker, settings, ctx.clock, create_transport(settings))
        while await worker.run_once():
            pass
        for i, path in enumerate(sorted(settings.mail_dir.glob("*.eml"))):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            text = message.get_body(preferencelist=("plain",)).get_content()
            for j, token in enumerate(re.findall(r"token=([^&\s#]+)", text)):
                secrets[f"email_link_token_{i}_{j}"] = token

    async def main():
        app = create_app(settings, FrozenClock())
        # A library logging through the standard library, as uvicorn and SQLAlchemy do.
        logging.getLogger("uvicorn.error").warning("stdlib line")
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                async def call(name, method, url, route, token=None, **kw):
                    headers = {"Cookie": COOKIE, **kw.pop("headers", {})}
                    if token:
                        headers["Authorization"] = f"Bearer {token}"
                    r = await c.request(method, url, headers=headers, **kw)
                    requests.append({
                        "name": name, "method": method, "route": route,
                        "status": r.status_code, "request_id": r.headers["x-request-id"],
                        "authenticated": bool(token) and r.status_code < 400,
                    })
                    return r

                def keep(prefix, tokens):
                    secrets[prefix + "_access_token"] = tokens["access_token"]
                    secrets[prefix + "_access_signature"] = tokens["access_token"].split(".")[2]
                    secrets[prefix + "_refresh_token"] = tokens["refresh_token"]
                    return tokens

                reg = "/api/v1/auth/register"
                login = "/api/v1/auth/login"
                refresh = "/api/v1/auth/refresh"
                me = "/api/v1/users/me"
                r = await call("register", "POST", reg, reg,
                               json={"email": EMAIL, "password": PASSWORD})
                secrets["user_id"] = r.json()["id"]
                await call("register_invalid", "POST", reg, reg,
                           json={"email": "not-an-email", "password": PASSWORD})
                await call("register_taken", "POST", reg, reg,
                           json={"email": EMAIL, "password": PASSWORD})
                t1 = keep("first", (await call("login", "POST", login, login,
                          data={"username": EMAIL, "password": PASSWORD})).json())
                await call("me", "GET", me, me, token=t1["access_token"])
                t2 = keep("refreshed", (await call("refresh", "POST", refresh, refresh,
                          json={"refresh_token": t1["refresh_token"]})).json())
                await call("refresh_reuse", "POST", refresh, refresh,
                           json={"refresh_token": t1["refresh_token"]})
                await call("me_revoked", "GET", me, me, token=t2["access_token"])
                t3 = keep("second", (await call("login_again", "POST", login, login,
                          data={"username": EMAIL, "password": PASSWORD})).json())
                t4 = keep("third", (await call("login_other_device", "POST", login, login,
                          data={"username": EMAIL, "password": PASSWORD})).json())
                sessions = (await call("sessions", "GET", me + "/sessions", me + "/sessions",
                                       token=t3["access_token"])).json()
                other = next(s["id"] for s in sessions if not s["current"])
                await call("revoke_session", "DELETE", f"{me}/sessions/{other}",
                           me + "/sessions/{session_id}", token=t3["access_token"])
                await call("password_change", "POST", me + "/password", me + "/password",
                           token=t3["access_token"],
                           json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
                await call("login_wrong_password", "POST", login, login,
                           data={"username": EMAIL, "password": WRONG_PASSWORD})
                await call("login_unknown_account", "POST", login, login,
                           data={"username": "nobody@example.com", "password": WRONG_PASSWORD})
                t5 = keep("fourth", (await call("login_new_password", "POST", login, login,
                          data={"username": EMAIL, "password": NEW_PASSWORD})).json())
                await call("logout", "POST", "/api/v1/auth/logout", "/api/v1/auth/logout",
                           token=t5["access_token"],
                           json={"refresh_token": t5["refresh_token"]})
                await call("me_after_logout", "GET", me, me, token=t5["access_token"])
                await call("me_malformed_token", "GET", me, me,
                           token=t5["access_token"][:-4] + "AAAA")
                await call("me_unauthenticated", "GET", me, me)
                if WITH_MAIL:
                    await deliver_mail(app, call)
        # Defence in depth: a careless log call with secrets under secret-looking keys.
        structlog.get_logger("atrium.test").info(
            "careless", password=PASSWORD, refresh_token=t5["refresh_token"],
            headers={"Authorization": "Bearer " + t5["access_token"], "Cookie": COOKIE},
        )
        sys.stderr.flush()
        print(json.dumps({"requests": requests, "secrets": secrets}))

    asyncio.run(main())
    """
)


@dataclass
class Flow:
    requests: list[dict[str, Any]]
    secrets: dict[str, str]
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def access_lines(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "request"]

    def access_line(self, name: str) -> dict[str, Any]:
        request_id = next(r["request_id"] for r in self.requests if r["name"] == name)
        lines = [e for e in self.access_lines() if e.get("request_id") == request_id]
        assert len(lines) == 1, lines
        return lines[0]


def run_flow(sqlite_template: Path, tmp: Path, mode: str) -> Flow:
    db = tmp / "atrium.db"
    shutil.copy(sqlite_template, db)
    script = tmp / "flow.py"
    script.write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
    result = subprocess.run(
        [sys.executable, str(script), f"sqlite+aiosqlite:///{db}", str(tmp / "var"), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return Flow(out["requests"], out["secrets"], result.stderr)


@pytest.fixture(scope="module")
def flow(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """Run the auth flow once in a child process; its requests, secrets and stderr."""
    return run_flow(sqlite_template, tmp_path_factory.mktemp("logflow"), "plain")


@pytest.fixture(scope="module")
def mail_flow(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """The auth flow, then a password-reset request and delivery of the outbox to files."""
    return run_flow(sqlite_template, tmp_path_factory.mktemp("mailflow"), "mail")


SECRET_NAMES = [
    "password",
    "new_password",
    "wrong_password",
    "cookie",
    *(
        f"{which}_{part}"
        for which in ("first", "refreshed", "second", "third", "fourth")
        for part in ("access_token", "access_signature", "refresh_token")
    ),
]


def test_the_flow_produced_logs(flow: Flow) -> None:
    names = {e.get("event") for e in flow.events}

    assert {"request", "user_registered", "login_succeeded", "login_failed"} <= names
    assert "refresh_token_reuse_detected" in names
    assert "password_changed" in names


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_never_appears_in_the_logs(flow: Flow, name: str) -> None:
    secret = flow.secrets[name]

    assert secret
    assert secret not in flow.stderr


def test_email_links_were_delivered(mail_flow: Flow) -> None:
    tokens = [k for k in mail_flow.secrets if k.startswith("email_link_token_")]

    assert len(tokens) >= 2  # the verification link of the registration, the reset link


def test_email_link_tokens_never_appear_in_the_logs(mail_flow: Flow) -> None:
    tokens = {k: v for k, v in mail_flow.secrets.items() if k.startswith("email_link_token_")}

    assert tokens
    leaked = [k for k, v in tokens.items() if v in mail_flow.stderr]
    assert leaked == []


def test_bearer_scheme_never_appears_in_the_logs(flow: Flow) -> None:
    assert "bearer" not in flow.stderr.lower()


def test_value_logged_under_a_secret_key_is_redacted(flow: Flow) -> None:
    careless = next(e for e in flow.events if e.get("event") == "careless")

    assert careless["password"] == REDACTED
    assert careless["refresh_token"] == REDACTED
    assert careless["headers"] == {"Authorization": REDACTED, "Cookie": REDACTED}


def test_structlog_lines_are_json_in_the_test_environment(flow: Flow) -> None:
    assert len(flow.events) > len(flow.requests)


def test_standard_library_log_lines_are_json_too(flow: Flow) -> None:
    lines = [line for line in flow.stderr.splitlines() if "stdlib line" in line]

    assert len(lines) == 1
    assert lines[0].startswith("{"), lines[0]
    assert json.loads(lines[0])["event"] == "stdlib line"


def test_httpx_does_not_log_the_urls_it_requests(flow: Flow) -> None:
    """httpx's INFO line for each request it sends (its whole URL) stays out of the log:
    the flow's client is httpx, in the process the application configured."""
    assert flow.requests
    assert not [e for e in flow.events if str(e.get("event", "")).startswith("HTTP Request:")]
    assert "HTTP Request:" not in flow.stderr


# --- access log ---------------------------------------------------------------------------


def test_every_request_is_logged_exactly_once(flow: Flow) -> None:
    logged = [e["request_id"] for e in flow.access_lines()]

    assert sorted(logged) == sorted(r["request_id"] for r in flow.requests)


LOGGED_REQUESTS = [
    "register",
    "login",
    "me",
    "refresh",
    "refresh_reuse",
    "sessions",
    "revoke_session",
    "password_change",
    "login_wrong_password",
    "logout",
    "me_unauthenticated",
]


@pytest.mark.parametrize("name", LOGGED_REQUESTS)
def test_access_log_line_has_method_and_status(flow: Flow, name: str) -> None:
    request = next(r for r in flow.requests if r["name"] == name)

    line = flow.access_line(name)

    assert (line["method"], line["status"]) == (request["method"], request["status"])


@pytest.mark.parametrize("name", LOGGED_REQUESTS)
def test_access_log_line_has_the_full_route_template(flow: Flow, name: str) -> None:
    request = next(r for r in flow.requests if r["name"] == name)

    assert flow.access_line(name)["route"] == request["route"]


def test_access_log_route_is_the_template_not_the_concrete_path(flow: Flow) -> None:
    line = flow.access_line("revoke_session")

    assert line["route"] == "/api/v1/users/me/sessions/{session_id}"


def test_access_log_latency_is_milliseconds(flow: Flow) -> None:
    latencies = [e["latency_ms"] for e in flow.access_lines()]

    assert all(isinstance(v, int | float) and 0 <= v < 60_000 for v in latencies)
    assert any(v > 0 for v in latencies)


@pytest.mark.parametrize("name", ["me", "sessions", "revoke_session", "password_change"])
def test_access_log_has_the_user_id_when_authenticated(flow: Flow, name: str) -> None:
    assert flow.access_line(name)["user_id"] == flow.secrets["user_id"]


@pytest.mark.parametrize(
    "name", ["register", "login", "me_unauthenticated", "me_malformed_token", "me_after_logout"]
)
def test_access_log_has_no_user_id_when_not_authenticated(flow: Flow, name: str) -> None:
    assert flow.access_line(name)["user_id"] is None


def test_access_log_request_id_matches_the_response_header(flow: Flow) -> None:
    ids = {e["request_id"] for e in flow.access_lines()}

    assert ids == {r["request_id"] for r in flow.requests}
    assert len(ids) == len(flow.requests)


# --- scrub --------------------------------------------------------------------------------


def test_scrub_redacts_secret_keys_at_the_top_level() -> None:
    cleaned = scrub({"password": "hunter2", "email": "ada@example.com"})

    assert cleaned == {"password": REDACTED, "email": "ada@example.com"}


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "current_password",
        "passwd",
        "access_token",
        "refresh_token",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "api_key",
        "api-key",
        "client_secret",
        "password_hash",
        "credentials",
    ],
)
def test_scrub_redacts_each_secret_looking_key(key: str) -> None:
    assert scrub({key: "s3cr3t"}) == {key: REDACTED}


def test_scrub_redacts_inside_nested_dicts() -> None:
    event = {"request": {"headers": {"Authorization": "Bearer x.y.z", "Accept": "*/*"}}}

    assert scrub(event) == {"request": {"headers": {"Authorization": REDACTED, "Accept": "*/*"}}}


def test_scrub_redacts_inside_lists_of_dicts() -> None:
    event = {"attempts": [{"user": "a", "password": "p1"}, {"user": "b", "password": "p2"}]}

    assert scrub(event) == {
        "attempts": [{"user": "a", "password": REDACTED}, {"user": "b", "password": REDACTED}]
    }


def test_scrub_redacts_a_whole_subtree_under_a_secret_key() -> None:
    assert scrub({"tokens": {"access": "a", "refresh": "r"}}) == {"tokens": REDACTED}


def test_scrub_redacts_inside_tuples() -> None:
    assert scrub({"pairs": ({"token": "t"}, "plain")}) == {"pairs": [{"token": REDACTED}, "plain"]}


def test_scrub_keeps_non_secret_values() -> None:
    event = {"user_id": "42", "status": 200, "route": "/x", "nested": [1, "two", None]}

    assert scrub(event) == event


def test_scrub_does_not_change_its_argument() -> None:
    event = {"password": "hunter2", "nested": {"refresh_token": "r"}}

    scrub(event)

    assert event == {"password": "hunter2", "nested": {"refresh_token": "r"}}


def test_scrub_keeps_non_string_keys() -> None:
    assert scrub({1: "one", ("a",): {"password": "p"}}) == {
        1: "one",
        ("a",): {"password": REDACTED},
    }
