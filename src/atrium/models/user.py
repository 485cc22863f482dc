"""The user account."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class UserStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class User(Base):
    """An account. ``email_normalized`` (NFC, lower-cased) carries the unique index."""

    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=UserStatus.active.value)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Language of the account's emails (e.g. "es"); None means mail.default_locale.
    locale: Mapped[str | None] = mapped_column(String(16))
