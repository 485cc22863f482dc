"""Second factors: TOTP factors, recovery codes, login challenges and trusted devices.

Secrets never appear in clear: a TOTP seed is encrypted (Fernet, keys from settings),
recovery codes, ``mfa_token`` values and ``device_token`` values are stored as their
SHA-256 digest (they carry at least 80 random bits, so a fast hash is enough).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class MfaFactor(Base):
    """A second factor of an account (``type``: ``totp``; other types may share the table).

    ``verified_at`` is None while the factor is *pending* (enrolled, never verified): a
    pending factor is not used at login. ``last_used_step`` is the RFC 6238 time step of
    the last accepted code; a code of that step or an earlier one is refused (replay).
    """

    __tablename__ = "mfa_factor"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(64))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    verified_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class MfaRecoveryCode(Base):
    """One recovery code (look-up secret, NIST SP 800-63B §5.1.2), single use: ``used_at``
    is set by a conditional UPDATE, so two concurrent uses cannot both succeed."""

    __tablename__ = "mfa_recovery_code"
    __table_args__ = (Index("ix_mfa_recovery_code_user_id_code_hash", "user_id", "code_hash"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class MfaChallenge(Base):
    """The state between a correct password and the second factor (the ``mfa_token``).

    Single use (``used_at``), short-lived (``expires_at``) and bound to the client that
    gave the password (``client_hash``: a digest of its address and user agent). ``amr``
    holds the methods already proven (``["pwd"]``).
    """

    __tablename__ = "mfa_challenge"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    client_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    amr: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class TrustedDevice(Base):
    """A device whose ``device_token`` lets a login skip the second factor (not the
    password) until ``expires_at``. Deleted when revoked, on a password reset and on any
    change of the account's factors."""

    __tablename__ = "trusted_device"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip_address: Mapped[str | None] = mapped_column(String(64))
