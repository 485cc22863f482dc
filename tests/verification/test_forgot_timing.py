"""POST /auth/password/forgot does the same work for a known and an unknown address
before it answers: the same SQL statements (none), the same rate-limit hit; the lookup,
the token and the outbox row come after the response, in a transaction of their own."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.types import Message, Receive, Scope, Send

from atrium.context import AppContext
from tests.factories import register
from tests.mailbox import outbox

FORGOT = "/api/v1/auth/password/forgot"


class Phases:
    """SQL statements sent before and after the response started, per request."""

    def __init__(self) -> None:
        self.answered = False
        self.before: list[str] = []
        self.after: list[str] = []

    def reset(self) -> None:
        self.answered = False
        self.before, self.after = [], []

    def record(self, statement: str) -> None:
        if statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            return
        # The shape of a statement: parameters and generated names do not matter.
        shape = re.sub(r"\s+", " ", re.sub(r"\$\d+|\?|'[^']*'", "?", statement)).strip()
        (self.after if self.answered else self.before).append(shape)


@pytest.fixture
async def observed(app: Any, ctx: AppContext) -> AsyncIterator[tuple[httpx.AsyncClient, Phases]]:
    phases = Phases()

    async def recording_app(scope: Scope, receive: Receive, send: Send) -> None:
        async def marking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                phases.answered = True
            await send(message)

        await app(scope, receive, marking_send)

    def before_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        phases.record(statement)

    sync_engine = ctx.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", before_execute)
    transport = httpx.ASGITransport(app=recording_app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
        yield c, phases
    event.remove(sync_engine, "before_cursor_execute", before_execute)


async def ask(client: httpx.AsyncClient, phases: Phases, email: str) -> tuple[list[str], list[str]]:
    phases.reset()
    response = await client.post(FORGOT, json={"email": email})
    assert response.status_code == 202
    return phases.before, phases.after


async def test_known_and_unknown_addresses_run_the_same_statements_before_the_answer(
    observed: tuple[httpx.AsyncClient, Phases], ctx: AppContext
) -> None:
    client, phases = observed
    await register(client, "ada@example.com")

    known_before, known_after = await ask(client, phases, "ada@example.com")
    unknown_before, unknown_after = await ask(client, phases, "nobody@example.com")

    assert known_before == unknown_before
    # The work that depends on the account happens, after the answer.
    assert any("INSERT INTO outbox_message" in s for s in known_after), known_after
    assert not any("INSERT INTO outbox_message" in s for s in unknown_after), unknown_after
    assert len(await outbox(ctx, "reset_password")) == 1


async def test_nothing_depends_on_the_account_before_the_answer(
    observed: tuple[httpx.AsyncClient, Phases],
) -> None:
    client, phases = observed
    await register(client, "ada@example.com")

    before, _ = await ask(client, phases, "ada@example.com")

    assert not any("user_account" in s or "email_token" in s for s in before), before
    assert not any(s.startswith(("INSERT", "UPDATE", "DELETE")) for s in before), before


async def test_the_reset_link_is_queued_durably_after_the_answer(
    observed: tuple[httpx.AsyncClient, Phases], ctx: AppContext
) -> None:
    client, phases = observed
    await register(client, "ada@example.com")

    _, after = await ask(client, phases, "ADA@example.com")

    assert any(s.startswith("INSERT INTO email_token") for s in after), after
    queued = await outbox(ctx, "reset_password")
    assert [m.to_address for m in queued] == ["ada@example.com"]
