"""Files uploaded by users."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class StoredFile(Base):
    """One uploaded file; its bytes are the storage object ``storage_key``.

    ``content_type`` is what the content was sniffed as, never what the client claimed;
    ``filename`` is the client's name, cleaned, used only in ``Content-Disposition``.
    """

    __tablename__ = "stored_file"
    __table_args__ = (
        Index("ix_stored_file_owner_id_created_at_id", "owner_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[datetime]
