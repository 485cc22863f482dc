"""Your data: exports and deletion with a grace period.

Creates ``data_export`` (one row per requested export of an account's data, at most one
pending or running per account: a partial unique index) and adds
``user_account.deletion_requested_at`` / ``deletion_due_at`` (the owner's deletion,
erased when the grace period ends). Grants the new ``users:export`` permission to the
built-in ``admin`` role (its id written out, so this revision never changes with the
application's catalogue).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:30:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")
ACTIVE = sa.text("status IN ('pending', 'running')")
DUE = sa.text("deletion_due_at IS NOT NULL")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "data_export",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("started_at", nullable=True),
        _at("finished_at", nullable=True),
        _at("expires_at", nullable=True),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_data_export_user_id_user_account",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_data_export"),
    )
    op.create_index("ix_data_export_user_id_created_at", "data_export", ["user_id", "created_at"])
    op.create_index("ix_data_export_status_expires_at", "data_export", ["status", "expires_at"])
    op.create_index(
        "uq_data_export_active_user_id",
        "data_export",
        ["user_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    # Nullable columns: a plain ADD COLUMN on both backends (no table rebuild on SQLite).
    op.add_column("user_account", _at("deletion_requested_at", nullable=True))
    op.add_column("user_account", _at("deletion_due_at", nullable=True))
    op.create_index(
        "ix_user_account_deletion_due_at",
        "user_account",
        ["deletion_due_at"],
        postgresql_where=DUE,
        sqlite_where=DUE,
    )
    role_permission = sa.table(
        "role_permission", sa.column("role_id", sa.Uuid()), sa.column("permission", sa.String())
    )
    op.bulk_insert(role_permission, [{"role_id": ADMIN_ID, "permission": "users:export"}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permission WHERE permission = 'users:export'"))
    op.drop_index("ix_user_account_deletion_due_at", table_name="user_account")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("deletion_due_at")
        batch.drop_column("deletion_requested_at")
    op.drop_index("uq_data_export_active_user_id", table_name="data_export")
    op.drop_index("ix_data_export_status_expires_at", table_name="data_export")
    op.drop_index("ix_data_export_user_id_created_at", table_name="data_export")
    op.drop_table("data_export")
