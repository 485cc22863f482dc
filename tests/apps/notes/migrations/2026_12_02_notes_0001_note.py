"""The notes application's table.

Revision ID: notes_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notes_0001"
down_revision = None
# The application's own branch; it needs the platform's accounts (user_account).
branch_labels = ("notes",)
depends_on = "0005"


def upgrade() -> None:
    op.create_table(
        "notes_note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.String(length=10000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_notes_note_author_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes_note")),
    )
    op.create_index(op.f("ix_notes_note_author_id"), "notes_note", ["author_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notes_note_author_id"), table_name="notes_note")
    op.drop_table("notes_note")
