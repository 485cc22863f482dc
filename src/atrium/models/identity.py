"""Social login: the identity providers managed through the admin API, the identities
linked to accounts, and the short-lived single-use tickets of the browser flows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class IdentityProvider(Base):
    """An OpenID Connect or GitHub provider configured through the admin API (providers
    of the settings are not stored). ``slug`` is the provider's id in URLs; ``settings``
    holds the issuer or endpoints, scopes and claim mapping; the client secret is stored
    only encrypted (Fernet, ``social.secret_keys``)."""

    __tablename__ = "identity_provider"

    id: Mapped[uuid.UUID] = uuid_pk()
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(100))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary(4096))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    trust_email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UserIdentity(Base):
    """An external identity linked to an account. Only ``issuer`` + ``subject``
    identifies it (OpenID Connect Core §5.7): never the email, which is copied here for
    display only."""

    __tablename__ = "user_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class OAuthTicket(Base):
    """A single-use secret of a social-login flow, stored as its SHA-256 digest:
    ``state`` (authorization request, 10 minutes), ``login_code`` (for single-page and
    mobile apps, 60 s) and ``link`` (a pending link awaiting the owner's password).
    ``payload`` carries what the next step needs; using a ticket is one conditional
    ``UPDATE … WHERE used_at IS NULL AND expires_at > now``."""

    __tablename__ = "oauth_ticket"
    __table_args__ = (Index("ix_oauth_ticket_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
