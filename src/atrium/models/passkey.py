"""Passkeys: WebAuthn credentials of accounts and the challenges of their ceremonies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class Passkey(Base):
    """A WebAuthn credential (W3C WebAuthn Level 3 §4 "public key credential") of an
    account: its ``credential_id`` (unique), COSE ``public_key`` and the authenticator's
    signature counter ``sign_count``, raised by a conditional UPDATE at each sign-in so that
    a cloned authenticator (a counter that does not grow) is refused. The authenticator
    keeps the account's ``user_handle`` (random, never personal data) for discoverable
    sign-in.
    """

    __tablename__ = "passkey"
    __table_args__ = (Index("ix_passkey_user_id_created_at_id", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(BigInteger)
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64))
    name: Mapped[str] = mapped_column(String(100))
    aaguid: Mapped[str] = mapped_column(String(36))
    transports: Mapped[list[Any]] = mapped_column(JSON)
    backed_up: Mapped[bool] = mapped_column(Boolean)
    device_type: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class WebAuthnChallenge(Base):
    """One ceremony's challenge (32 random bytes), single use: claimed by a DELETE that
    only one request can win, refused after ``expires_at``. ``purpose`` is
    ``registration`` (``user_id`` set), ``authentication`` (passwordless sign-in;
    ``user_id`` set when an email was given) or ``mfa`` (a second factor)."""

    __tablename__ = "webauthn_challenge"
    __table_args__ = (Index("ix_webauthn_challenge_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    purpose: Mapped[str] = mapped_column(String(20))
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
