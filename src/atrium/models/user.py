"""The user account."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class UserStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class User(Base):
    """An account. ``email_normalized`` (NFC, lower-cased) carries the unique index.

    Roles (``user_role``) replace the former ``is_superuser`` flag: a superuser is an
    account holding the ``superadmin`` role. ``deleted_at`` marks a soft-deleted account:
    it cannot log in, is hidden from lists, and is purged after the retention window.
    """

    __tablename__ = "user_account"
    # Keyset pagination of the admin list: one composite index per sort key, the id as the
    # tie-breaker. Substring search uses pg_trgm GIN indexes on PostgreSQL (see
    # TRIGRAM_INDEXES), created by the migration only there.
    __table_args__ = (
        Index("ix_user_account_created_at_id", "created_at", "id"),
        Index("ix_user_account_email_normalized_id", "email_normalized", "id"),
        Index("ix_user_account_last_login_at_id", "last_login_at", "id"),
        # Soft-deleted accounts are few: their list walks a small partial index.
        Index(
            "ix_user_account_deleted_created_at_id",
            "created_at",
            "id",
            postgresql_where=text("deleted_at IS NOT NULL"),
            sqlite_where=text("deleted_at IS NOT NULL"),
        ),
        # The erasure job walks the few accounts whose deletion is scheduled.
        Index(
            "ix_user_account_deletion_due_at",
            "deletion_due_at",
            postgresql_where=text("deletion_due_at IS NOT NULL"),
            sqlite_where=text("deletion_due_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=UserStatus.active.value)
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    profile_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Language of the account's emails (e.g. "es"); None means mail.default_locale.
    locale: Mapped[str | None] = mapped_column(String(16))
    deleted_at: Mapped[datetime | None]
    # Deletion asked by the owner (DELETE /users/me): when, and when the grace period ends
    # and the account is erased. Meanwhile it is hidden and can only cancel the deletion.
    deletion_requested_at: Mapped[datetime | None]
    deletion_due_at: Mapped[datetime | None]


# PostgreSQL-only GIN (pg_trgm) indexes for ILIKE '%term%' search; not in the model
# metadata because SQLite has no equivalent. Autogenerate skips them (migrations/env.py).
TRIGRAM_INDEXES = (
    "ix_user_account_email_trgm",
    "ix_user_account_username_trgm",
    "ix_user_account_full_name_trgm",
)
