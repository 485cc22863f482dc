"""The email outbox and the single-use email tokens (verification, reset, email change)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class OutboxStatus(StrEnum):
    pending = "pending"  # waiting for its next attempt (next_attempt_at)
    sending = "sending"  # claimed by a worker until locked_until (a lease)
    sent = "sent"
    failed = "failed"  # gave up after mail.max_attempts; `atrium mail retry-failed`


class OutboxMessage(Base):
    """One email to send, written in the same transaction as the change that causes it.

    The worker renders ``template`` in ``locale`` with ``context`` at delivery time. The
    row's id is the message's ``Message-ID`` (``<id@sender-domain>``), so a retry after a
    crash is recognisable as the same message. ``context`` may hold a single-use link; it
    is emptied once the message is sent.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    template: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(16))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    lease_id: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class EmailTokenPurpose(StrEnum):
    verify_email = "verify_email"
    # A purpose name, not a secret.
    reset_password = "reset_password"  # noqa: S105  # nosec B105
    change_email = "change_email"
    # Keeps an account whose owner asked for its deletion (the emailed link, or the
    # sign-in during the grace period).
    cancel_deletion = "cancel_deletion"


class EmailToken(Base):
    """A single-use token sent by email, stored only as its SHA-256 digest.

    ``email`` is the address the link was sent to: verification applies only while it is
    still the account's address; for an email change it is the new address.
    """

    __tablename__ = "email_token"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
