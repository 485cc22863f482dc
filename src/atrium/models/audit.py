"""The append-only audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class AuditEvent(Base):
    """Something that happened to an account, a session, a role or the system.

    Append-only: rows are inserted in the transaction of the change they describe and
    never updated. ``actor_id`` and ``target_id`` are plain values, not foreign keys, so
    the trail outlives the accounts it mentions. ``changes`` holds a redacted
    ``{"before": {...}, "after": {...}}`` of the changed fields; ``details`` any other
    context (a reason, a role name). Neither ever holds a password, hash, token or secret.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_occurred_at_id", "occurred_at", "id"),
        Index("ix_audit_event_actor_id_occurred_at", "actor_id", "occurred_at", "id"),
        Index("ix_audit_event_target_id_occurred_at", "target_id", "occurred_at", "id"),
        Index("ix_audit_event_action_occurred_at", "action", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    occurred_at: Mapped[datetime]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
