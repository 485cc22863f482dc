"""The embedded default without SMTP: messages become ``.eml`` files and their link is logged."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from atrium.config import Environment
from atrium.context import AppContext
from atrium.mail import transport as transport_module
from atrium.mail.transport import FileTransport, create_transport
from atrium.mail.worker import MailWorker
from atrium.models import OutboxStatus
from tests.factories import register
from tests.mailbox import outbox, token_of


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))


def _read(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_without_smtp_messages_are_written_as_eml_and_the_link_logged(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _Log()
    monkeypatch.setattr(transport_module, "log", log)
    # The development environment (the embedded default's) logs links; see the test below.
    dev = ctx.settings.model_copy(update={"environment": Environment.development})
    transport = create_transport(dev)
    assert isinstance(transport, FileTransport)
    await register(client, "ada@example.com")
    [row] = await outbox(ctx)

    await MailWorker(ctx.sessionmaker, ctx.settings, ctx.clock, transport).drain()

    path = ctx.settings.data_dir / "mail" / f"{row.id}.eml"
    message = _read(path)
    assert message["To"] == "ada@example.com"
    assert message["Message-ID"] == f"<{row.id}@atrium.test>"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    [(event, fields)] = log.events
    assert event == "mail_written_to_file"
    assert fields["path"] == str(path)
    assert fields["link"] in text.get_content()  # type: ignore[attr-defined]
    token = token_of(fields["link"])
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 204
    assert (await outbox(ctx))[0].status == OutboxStatus.sent


async def test_a_retried_message_rewrites_the_same_file(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    [row] = await outbox(ctx)
    transport = FileTransport(ctx.settings.mail_dir)
    worker = MailWorker(ctx.sessionmaker, ctx.settings, ctx.clock, transport)
    message = worker.renderer.render(row)

    await transport.send(message)
    await transport.send(message)

    assert [p.name for p in ctx.settings.mail_dir.iterdir()] == [f"{row.id}.eml"]


async def test_outside_development_the_link_and_its_token_are_not_logged(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _Log()
    monkeypatch.setattr(transport_module, "log", log)
    transport = create_transport(ctx.settings)
    await register(client, "ada@example.com")

    await MailWorker(ctx.sessionmaker, ctx.settings, ctx.clock, transport).drain()

    [(event, fields)] = log.events
    assert event == "mail_written_to_file"
    assert fields["link"] is None
