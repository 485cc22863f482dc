"""A user's public profile and preferences (one row each per account, created on first write)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base


class Profile(Base):
    """What other users may see of an account; the handle (``username``) and the verified
    badge stay on ``user_account``. ``visibility`` is ``public``, ``members`` or
    ``private``; the ``*_visibility`` columns narrow single fields further.
    ``avatar_version`` names the current avatar's stored objects (a content hash), so
    every new avatar has new URLs; null means no avatar."""

    __tablename__ = "user_profile"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str | None] = mapped_column(String(100))
    bio: Mapped[str | None] = mapped_column(String(500))
    location: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(2048))
    pronouns: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    location_visibility: Mapped[str] = mapped_column(String(16), default="public")
    website_visibility: Mapped[str] = mapped_column(String(16), default="public")
    pronouns_visibility: Mapped[str] = mapped_column(String(16), default="public")
    avatar_version: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class UserPreferences(Base):
    """Preferences as a JSON document with the schema version it was written under:
    defaults fill in keys added by later versions when the row is read, so adding a
    preference needs no data migration."""

    __tablename__ = "user_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    schema_version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
