"""How a rendered message leaves: SMTP (aiosmtplib), or ``.eml`` files in development.

Errors are classified for the worker: :class:`PermanentDeliveryError` (the server refused
every recipient with a 5xx reply, RFC 5321 §4.2.1: retrying cannot help) or
:class:`TransientDeliveryError` (anything else: connection refused, timeouts, 4xx).
"""

from __future__ import annotations

import os
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib
import anyio
import structlog

from atrium.config import Environment, Settings

log = structlog.get_logger(__name__)

_LINK_RE = re.compile(r"https?://\S+")


class DeliveryError(Exception):
    """A message could not be handed over."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying later (server down, timeout, 4xx)."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (every recipient refused with a 5xx reply)."""


class Transport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over; raises :class:`DeliveryError`."""
        ...


class SmtpTransport:
    """SMTP submission with aiosmtplib: implicit TLS (``tls``, port 465), STARTTLS
    (``starttls``, port 587, RFC 3207) or plain (``none``), optional AUTH."""

    def __init__(self, settings: Settings) -> None:
        mail = settings.mail
        assert mail.smtp_host is not None
        self.host = mail.smtp_host
        self.port = mail.effective_smtp_port
        self.use_tls = mail.smtp_security == "tls"
        self.start_tls = mail.smtp_security == "starttls"
        self.username = mail.smtp_username
        self.password = mail.smtp_password.get_secret_value() if mail.smtp_password else None
        self.timeout = mail.smtp_timeout_seconds
        self.validate_certs = mail.smtp_validate_certs

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                username=self.username,
                password=self.password,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(err.code >= 500 for err in exc.recipients):
                raise PermanentDeliveryError(_describe(exc)) from exc
            raise TransientDeliveryError(_describe(exc)) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(_describe(exc)) from exc

    async def probe(self, timeout_seconds: float) -> None:
        """Readiness: connect (with TLS as configured), EHLO and NOOP, then QUIT.

        Raises:
            aiosmtplib.SMTPException, OSError, TimeoutError: the server is not usable.
        """
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=timeout_seconds,
            validate_certs=self.validate_certs,
        )
        await client.connect()
        try:
            await client.noop()
        finally:
            await client.quit()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


class FileTransport:
    """Writes each message to ``<data_dir>/mail/<message id>.eml``, so that every flow can
    be completed by hand without a mail server. The file name is the outbox row id: a retry
    rewrites the same file, it never adds a second one.

    With ``log_links`` (the development environment only) the link of the message is
    logged too. It carries a single-use token, and tokens never appear in the logs of any
    other environment (OWASP Logging Cheat Sheet)."""

    def __init__(self, directory: Path, *, log_links: bool = False) -> None:
        self.directory = directory
        self.log_links = log_links

    def _write(self, name: str, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.eml"
        tmp = path.with_suffix(".eml.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    async def send(self, message: EmailMessage) -> None:
        name = str(message["Message-ID"]).strip("<>").partition("@")[0]
        try:
            path = await anyio.to_thread.run_sync(self._write, name, message.as_bytes())
        except OSError as exc:
            raise TransientDeliveryError(_describe(exc)) from exc
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        links = _LINK_RE.findall(text)
        log.info(
            "mail_written_to_file",
            path=str(path),
            to=str(message["To"]),
            subject=str(message["Subject"]),
            link=(links[0] if links else None) if self.log_links else None,
        )


def create_transport(settings: Settings) -> Transport:
    """SMTP when ``mail.smtp_host`` is set, else ``.eml`` files under ``<data_dir>/mail``."""
    if settings.mail.smtp_host:
        return SmtpTransport(settings)
    return FileTransport(
        settings.mail_dir, log_links=settings.environment is Environment.development
    )
