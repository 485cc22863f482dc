"""The raffles application's tables, in a metadata of their own (the platform's
``Base.metadata`` describes the platform's tables only).

Counters that decide availability live on the raffle row (``tickets_sold``,
``tickets_reserved``) and on one row per account and raffle (:class:`Holding`), so that a
purchase is decided by conditional ``UPDATE`` statements: the database, not a
check-then-write, keeps ``tickets_sold + tickets_reserved <= total_tickets`` and each
account's holding within ``max_per_account``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from atrium.models import User
from atrium.models.base import NAMING_CONVENTION, UTCDateTime


class RafflesBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class RaffleStatus(enum.StrEnum):
    """``draft → scheduled → open → closed → drawn``, or ``cancelled`` before ``drawn``."""

    draft = "draft"
    scheduled = "scheduled"
    open = "open"
    closed = "closed"
    drawn = "drawn"
    cancelled = "cancelled"


class PurchaseStatus(enum.StrEnum):
    """``reserved`` (tickets held, payment awaited) → ``paid`` (tickets issued), or
    ``released`` (reservation expired, payment failed or cancelled); ``paid`` →
    ``refund_pending`` → ``refunded``. ``failed``: the payment could not be started."""

    reserved = "reserved"
    paid = "paid"
    released = "released"
    failed = "failed"
    refund_pending = "refund_pending"
    refunded = "refunded"


class Raffle(RafflesBase):
    __tablename__ = "raffles_raffle"
    __table_args__ = (
        CheckConstraint("tickets_sold + tickets_reserved <= total_tickets", name="capacity"),
        CheckConstraint("tickets_sold >= 0 AND tickets_reserved >= 0", name="counters"),
        Index("ix_raffles_raffle_status_closes_at_id", "status", "closes_at", "id"),
        Index("ix_raffles_raffle_status_ticket_price_id", "status", "ticket_price", "id"),
        Index("ix_raffles_raffle_status_created_at_id", "status", "created_at", "id"),
        Index("ix_raffles_raffle_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(10_000))
    prize_description: Mapped[str] = mapped_column(String(2_000))
    terms: Mapped[str] = mapped_column(String(20_000))
    image_file_ids: Mapped[list[str]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    # ISO 4217 minor units (cents for EUR/USD, yen for JPY).
    ticket_price: Mapped[int] = mapped_column(BigInteger)
    total_tickets: Mapped[int] = mapped_column(Integer)
    max_per_account: Mapped[int] = mapped_column(Integer)
    prizes: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    tickets_sold: Mapped[int] = mapped_column(Integer, default=0)
    tickets_reserved: Mapped[int] = mapped_column(Integer, default=0)
    # The draw (docs/apps/raffles.md): the seed stays secret until the draw or cancellation.
    seed: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    commitment: Mapped[str | None] = mapped_column(String(64))
    beacon: Mapped[str | None] = mapped_column(String(200))
    beacon_round: Mapped[int | None] = mapped_column(BigInteger)
    beacon_value: Mapped[str | None] = mapped_column(String(256))
    ledger_hash: Mapped[str | None] = mapped_column(String(64))
    ticket_count: Mapped[int | None] = mapped_column(Integer)
    winners: Mapped[list[int] | None] = mapped_column(JSON)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(User.id, ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    drawn_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class Purchase(RafflesBase):
    __tablename__ = "raffles_purchase"
    __table_args__ = (
        Index("ix_raffles_purchase_user_id_created_at_id", "user_id", "created_at", "id"),
        Index("ix_raffles_purchase_status_reserved_until", "status", "reserved_until"),
        Index("ix_raffles_purchase_raffle_id_status", "raffle_id", "status"),
        Index("ix_raffles_purchase_raffle_id_created_at_id", "raffle_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    raffle_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("raffles_raffle.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(User.id, ondelete="SET NULL"))
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    # True while the purchase counts in the raffle's tickets_reserved and the holding.
    holds_reservation: Mapped[bool] = mapped_column(default=True)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(255))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_until: Mapped[datetime]
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]


class Holding(RafflesBase):
    """Tickets an account holds or has reserved in one raffle (the per-account maximum)."""

    __tablename__ = "raffles_holding"

    raffle_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("raffles_raffle.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(User.id, ondelete="CASCADE"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)


class Ticket(RafflesBase):
    __tablename__ = "raffles_ticket"
    __table_args__ = (
        UniqueConstraint("raffle_id", "number", name="uq_raffles_ticket_raffle_id_number"),
        Index("ix_raffles_ticket_owner_id_issued_at_id", "owner_id", "issued_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    raffle_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("raffles_raffle.id", ondelete="CASCADE")
    )
    # 1..N in issue order, per raffle.
    number: Mapped[int] = mapped_column(Integer)
    purchase_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("raffles_purchase.id", ondelete="CASCADE"), index=True
    )
    # The ledger never changes: a purged account's tickets stay, without an owner.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(User.id, ondelete="SET NULL"))
    issued_at: Mapped[datetime]


class IdempotencyKey(RafflesBase):
    """The answer given to an account's ``Idempotency-Key``, replayed for the same key."""

    __tablename__ = "raffles_idempotency_key"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(User.id, ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


class StripeEvent(RafflesBase):
    """A Stripe event already processed (events are processed once each)."""

    __tablename__ = "raffles_stripe_event"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime]


class DrawLogEntry(RafflesBase):
    """One entry of the public hash-chained draw log (docs/apps/raffles.md)."""

    __tablename__ = "raffles_draw_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    raffle_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
