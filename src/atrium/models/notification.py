"""In-app notifications and admin broadcasts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class Notification(Base):
    """One notice in an account's inbox. ``category`` matches the notification preferences
    (``security``, ``account``, ``product`` and those of later modules). ``source_id`` is
    the event or broadcast it came from: unique per account, so a redelivered event or a
    repeated fan-out batch never shows a notice twice."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_id_created_at", "user_id", "created_at", "id"),
        UniqueConstraint("user_id", "source_id", name="uq_notification_user_id_source_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000))
    link: Mapped[str | None] = mapped_column(String(2048))
    source_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class NotificationBroadcast(Base):
    """An administrator's notice to every account or to a role's holders, fanned out in
    batches by the worker (``fanned_out_until``: the last account id reached, in id
    order; ``completed_at`` once every account has it)."""

    __tablename__ = "notification_broadcast"

    id: Mapped[uuid.UUID] = uuid_pk()
    audience: Mapped[str] = mapped_column(String(16))
    role_id: Mapped[uuid.UUID | None]
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000))
    link: Mapped[str | None] = mapped_column(String(2048))
    actor_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    fanned_out_until: Mapped[uuid.UUID | None]
    completed_at: Mapped[datetime | None]
