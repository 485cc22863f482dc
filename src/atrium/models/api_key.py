"""API keys (personal access tokens) of accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class ApiKey(Base):
    """One API key of an account, stored only as ``key_hash``, its HMAC-SHA256 under the
    server secret (see :mod:`atrium.core.apikeys`); ``prefix`` is its first characters,
    shown in lists. ``scopes`` is a JSON list of permission names: the key acts with the
    intersection of these and the owner's current permissions. A revoked key
    (``revoked_at`` set) or an expired one (``expires_at`` passed) is refused.
    """

    __tablename__ = "api_key"
    __table_args__ = (Index("ix_api_key_user_id_created_at_id", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
