"""The notes application's one table, in a metadata of its own (the platform's
``Base.metadata`` describes the platform's tables only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from atrium.models import User
from atrium.models.base import NAMING_CONVENTION, UTCDateTime


class NotesBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Note(NotesBase):
    __tablename__ = "notes_note"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    author_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(User.id, ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(String(10_000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
