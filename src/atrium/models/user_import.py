"""User imports: one row per import job, its outcome and its errors by line."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class ImportStatus(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class UserImport(Base):
    """An import of accounts from a file (``atrium import users`` or
    ``POST /api/v1/admin/users/import``). ``errors`` holds the first errors found, each
    ``{"record", "line", "field", "message"}``; ``error_count`` counts them all. A failed
    import changed nothing (all or nothing)."""

    __tablename__ = "user_import"

    id: Mapped[uuid.UUID] = uuid_pk()
    format: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.pending.value)
    requested_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    records: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
