"""The raffles application: a raffle's purchases, newest first (the administrators' list
of a raffle's purchases walks this index by keyset).

Revision ID: raffles_0002
Revises: raffles_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "raffles_0002"
down_revision = "raffles_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_raffles_purchase_raffle_id_created_at_id"),
        "raffles_purchase",
        ["raffle_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_raffles_purchase_raffle_id_created_at_id"), table_name="raffles_purchase"
    )
