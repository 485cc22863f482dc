"""Domain events (the event outbox) and their per-consumer deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class Event(Base):
    """One change others may care about, written in the transaction of the change.

    ``type`` is a catalogue name (``user.suspended``) at ``version`` of its schema;
    ``data`` matches that JSON Schema and never holds a secret, hash or token.
    ``actor_id`` and ``subject_id`` are plain values, not foreign keys, so an event
    outlives what it mentions. ``dispatched_at`` is set once the dispatcher has written a
    delivery row for every consumer that takes the type.
    """

    __tablename__ = "event"
    __table_args__ = (
        Index(
            "ix_event_undispatched",
            "occurred_at",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        Index("ix_event_occurred_at_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    occurred_at: Mapped[datetime]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    dispatched_at: Mapped[datetime | None]


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its next attempt (next_attempt_at)
    delivering = "delivering"  # claimed by a worker until locked_until (a lease)
    delivered = "delivered"
    failed = "failed"  # gave up after events.max_attempts; `atrium events retry-failed`


class EventDelivery(Base):
    """One event to hand to one consumer: the unit of retry, lease and at-least-once.

    Unique per (event, consumer), so a consumer is offered an event by one worker at a time
    and, in normal operation, once.
    """

    __tablename__ = "event_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "consumer", name="uq_event_delivery_event_id_consumer"),
        Index("ix_event_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_event_delivery_consumer_status", "consumer", "status"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"))
    consumer: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    lease_id: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
