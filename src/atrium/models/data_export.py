"""Exports of an account's data (GDPR arts. 15 and 20): one row per requested ZIP."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class ExportStatus(StrEnum):
    pending = "pending"
    running = "running"
    ready = "ready"
    failed = "failed"


# The states of an export still being made: an account has at most one (a partial unique
# index, so two concurrent requests cannot both start one).
ACTIVE_EXPORT_STATES = (ExportStatus.pending.value, ExportStatus.running.value)


class DataExport(Base):
    """An export of one account's data: requested (``pending``), being built by the
    worker's leader (``running``), downloadable until ``expires_at`` (``ready``: the ZIP is
    the storage object ``storage_key``, ``size_bytes`` long), or ``failed`` (``error``).
    ``requested_by`` is the account itself or the administrator who asked for it. Rows and
    ZIPs go when they expire (retention ``exports``) and with the account."""

    __tablename__ = "data_export"
    __table_args__ = (
        Index("ix_data_export_user_id_created_at", "user_id", "created_at"),
        Index("ix_data_export_status_expires_at", "status", "expires_at"),
        Index(
            "uq_data_export_active_user_id",
            "user_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'running')"),
            sqlite_where=text("status IN ('pending', 'running')"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    requested_by: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    storage_key: Mapped[str | None] = mapped_column(String(512))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(500))
