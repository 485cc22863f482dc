"""Sessions (one per login) and the refresh tokens of each session's family."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class AuthSession(Base):
    """A login session: the family of refresh tokens rotated from one login.

    ``expires_at`` is the absolute end of the session; the idle limit is measured from
    ``last_used_at``. A revoked session (``revoked_at`` set) accepts neither its refresh
    tokens nor its access tokens.

    How strongly the session was authenticated (NIST SP 800-63B authenticator assurance
    levels; OpenID Connect Core ``acr``/``amr``/``auth_time``): ``aal`` is 1 or 2, ``amr``
    the RFC 8176 methods used (``pwd``, ``otp``, ``mfa``, ``hwk``, ``swk``, ``user`` ...),
    ``auth_time`` when the user last actively authenticated. Only an authentication (login,
    second factor, step-up) raises them; refreshing copies them into the new access token.
    The server defaults let a previous release insert sessions during a rolling upgrade.
    """

    __tablename__ = "auth_session"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    aal: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    amr: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: ["pwd"], server_default=text("'[\"pwd\"]'")
    )
    # Server default (migration 0006): the insert time on PostgreSQL, the epoch on SQLite
    # (an unknown time, never "recent").
    auth_time: Mapped[datetime]


class RefreshToken(Base):
    """One refresh token of a session, stored only as its SHA-256 digest.

    ``used_at`` is set when the token is exchanged; presenting it again is reuse.
    """

    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_session.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
