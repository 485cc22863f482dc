"""Email test helpers: a real SMTP server (aiosmtpd) on a free port, delivery workers,
and readers for queued or delivered messages and their links."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from atrium.config import Settings
from atrium.context import AppContext
from atrium.core.clock import Clock
from atrium.mail.transport import SmtpTransport
from atrium.mail.worker import MailWorker
from atrium.models import OutboxMessage

_LINK_RE = re.compile(r"https?://\S+")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    """One message as the SMTP server got it."""

    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def link(self) -> str:
        links = _LINK_RE.findall(self.text)
        assert len(links) == 1, links
        return str(links[0])

    @property
    def token(self) -> str:
        return token_of(self.link)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


@dataclass
class SmtpSink:
    """aiosmtpd handler recording every message accepted."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server on a free port of 127.0.0.1."""
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def smtp_settings(settings: Settings, port: int, **mail: Any) -> Settings:
    """``settings`` with SMTP (no TLS) on ``127.0.0.1:port`` and any other mail fields."""
    updated = settings.mail.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "smtp_timeout_seconds": 5.0,
            **mail,
        }
    )
    return settings.model_copy(update={"mail": updated})


def smtp_worker(ctx: AppContext, port: int, clock: Clock | None = None, **mail: Any) -> MailWorker:
    """A delivery worker over the app's database, sending to SMTP on ``port``."""
    settings = smtp_settings(ctx.settings, port, **mail)
    return MailWorker(ctx.sessionmaker, settings, clock or ctx.clock, SmtpTransport(settings))


async def outbox(ctx: AppContext, template: str | None = None) -> list[OutboxMessage]:
    """Outbox rows (oldest first), optionally of one template."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.id)
    if template is not None:
        stmt = stmt.where(OutboxMessage.template == template)
    async with ctx.sessionmaker() as db:
        return list((await db.execute(stmt)).scalars())


async def queued_token(ctx: AppContext, template: str, to: str) -> str:
    """The token in the link of the newest queued ``template`` message to ``to``."""
    rows = [r for r in await outbox(ctx, template) if r.to_address == to]
    assert rows, f"no {template} message to {to}"
    return token_of(rows[-1].context["link"])
