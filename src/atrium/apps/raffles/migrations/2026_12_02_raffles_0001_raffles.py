"""The raffles application: raffles, purchases, tickets, holdings, idempotency keys,
processed Stripe events and the hash-chained draw log.

Revision ID: raffles_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "raffles_0001"
down_revision = None
# The application's own branch; it needs the platform's accounts (user_account).
branch_labels = ("raffles",)
depends_on = "0005"


def upgrade() -> None:
    op.create_table(
        "raffles_draw_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("raffle_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_raffles_draw_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_raffles_draw_log_hash")),
    )
    op.create_index(
        op.f("ix_raffles_draw_log_raffle_id"), "raffles_draw_log", ["raffle_id"], unique=False
    )
    op.create_table(
        "raffles_idempotency_key",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_raffles_idempotency_key_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_raffles_idempotency_key")),
    )
    op.create_index(
        op.f("ix_raffles_idempotency_key_created_at"),
        "raffles_idempotency_key",
        ["created_at"],
        unique=False,
    )
    op.create_table(
        "raffles_raffle",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=10000), nullable=False),
        sa.Column("prize_description", sa.String(length=2000), nullable=False),
        sa.Column("terms", sa.String(length=20000), nullable=False),
        sa.Column("image_file_ids", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("ticket_price", sa.BigInteger(), nullable=False),
        sa.Column("total_tickets", sa.Integer(), nullable=False),
        sa.Column("max_per_account", sa.Integer(), nullable=False),
        sa.Column("prizes", sa.Integer(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tickets_sold", sa.Integer(), nullable=False),
        sa.Column("tickets_reserved", sa.Integer(), nullable=False),
        sa.Column("seed", sa.LargeBinary(length=32), nullable=True),
        sa.Column("commitment", sa.String(length=64), nullable=True),
        sa.Column("beacon", sa.String(length=200), nullable=True),
        sa.Column("beacon_round", sa.BigInteger(), nullable=True),
        sa.Column("beacon_value", sa.String(length=256), nullable=True),
        sa.Column("ledger_hash", sa.String(length=64), nullable=True),
        sa.Column("ticket_count", sa.Integer(), nullable=True),
        sa.Column("winners", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "tickets_sold + tickets_reserved <= total_tickets",
            name=op.f("ck_raffles_raffle_capacity"),
        ),
        sa.CheckConstraint(
            "tickets_sold >= 0 AND tickets_reserved >= 0", name=op.f("ck_raffles_raffle_counters")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_raffles_raffle_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raffles_raffle")),
    )
    op.create_index(
        "ix_raffles_raffle_created_at_id", "raffles_raffle", ["created_at", "id"], unique=False
    )
    op.create_index(
        "ix_raffles_raffle_status_closes_at_id",
        "raffles_raffle",
        ["status", "closes_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_raffles_raffle_status_created_at_id",
        "raffles_raffle",
        ["status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_raffles_raffle_status_ticket_price_id",
        "raffles_raffle",
        ["status", "ticket_price", "id"],
        unique=False,
    )
    op.create_table(
        "raffles_stripe_event",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raffles_stripe_event")),
    )
    op.create_table(
        "raffles_holding",
        sa.Column("raffle_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["raffle_id"],
            ["raffles_raffle.id"],
            name=op.f("fk_raffles_holding_raffle_id_raffles_raffle"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_raffles_holding_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("raffle_id", "user_id", name=op.f("pk_raffles_holding")),
    )
    op.create_table(
        "raffles_purchase",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("raffle_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("holds_reservation", sa.Boolean(), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("client_secret", sa.String(length=255), nullable=True),
        sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
        sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["raffle_id"],
            ["raffles_raffle.id"],
            name=op.f("fk_raffles_purchase_raffle_id_raffles_raffle"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_raffles_purchase_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raffles_purchase")),
        sa.UniqueConstraint(
            "payment_intent_id", name=op.f("uq_raffles_purchase_payment_intent_id")
        ),
    )
    op.create_index(
        "ix_raffles_purchase_raffle_id_status",
        "raffles_purchase",
        ["raffle_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_raffles_purchase_status_reserved_until",
        "raffles_purchase",
        ["status", "reserved_until"],
        unique=False,
    )
    op.create_index(
        "ix_raffles_purchase_user_id_created_at_id",
        "raffles_purchase",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "raffles_ticket",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("raffle_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_raffles_ticket_owner_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["raffles_purchase.id"],
            name=op.f("fk_raffles_ticket_purchase_id_raffles_purchase"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["raffle_id"],
            ["raffles_raffle.id"],
            name=op.f("fk_raffles_ticket_raffle_id_raffles_raffle"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raffles_ticket")),
        sa.UniqueConstraint("raffle_id", "number", name="uq_raffles_ticket_raffle_id_number"),
    )
    op.create_index(
        "ix_raffles_ticket_owner_id_issued_at_id",
        "raffles_ticket",
        ["owner_id", "issued_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_raffles_ticket_purchase_id"), "raffles_ticket", ["purchase_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_raffles_ticket_purchase_id"), table_name="raffles_ticket")
    op.drop_index("ix_raffles_ticket_owner_id_issued_at_id", table_name="raffles_ticket")
    op.drop_table("raffles_ticket")
    op.drop_index("ix_raffles_purchase_user_id_created_at_id", table_name="raffles_purchase")
    op.drop_index("ix_raffles_purchase_status_reserved_until", table_name="raffles_purchase")
    op.drop_index("ix_raffles_purchase_raffle_id_status", table_name="raffles_purchase")
    op.drop_table("raffles_purchase")
    op.drop_table("raffles_holding")
    op.drop_table("raffles_stripe_event")
    op.drop_index("ix_raffles_raffle_status_ticket_price_id", table_name="raffles_raffle")
    op.drop_index("ix_raffles_raffle_status_created_at_id", table_name="raffles_raffle")
    op.drop_index("ix_raffles_raffle_status_closes_at_id", table_name="raffles_raffle")
    op.drop_index("ix_raffles_raffle_created_at_id", table_name="raffles_raffle")
    op.drop_table("raffles_raffle")
    op.drop_index(
        op.f("ix_raffles_idempotency_key_created_at"), table_name="raffles_idempotency_key"
    )
    op.drop_table("raffles_idempotency_key")
    op.drop_index(op.f("ix_raffles_draw_log_raffle_id"), table_name="raffles_draw_log")
    op.drop_table("raffles_draw_log")
