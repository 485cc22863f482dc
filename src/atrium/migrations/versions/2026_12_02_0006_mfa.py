"""Multi-factor authentication: assurance of sessions, second factors, trusted devices.

Adds ``aal``, ``amr`` and ``auth_time`` to ``auth_session`` (existing sessions are
password sessions at aal1, authenticated when they were created); creates
``mfa_factor``, ``mfa_recovery_code``, ``mfa_challenge`` and ``trusted_device``; adds
``role.mfa_required``, on for the built-in ``admin`` and ``superadmin``; grants the new
``users:mfa_reset`` permission to the built-in ``admin`` role (ids written out so this
revision never changes when the application's catalogue does).

The new session columns have server defaults, so the previous release keeps opening
sessions during a rolling upgrade on PostgreSQL (``auth_time`` = the insert time there;
on SQLite, which cannot add a column defaulting to the current time, the epoch: an
unknown time, never recent enough for a sensitive operation).

Revision ID: 0006
Revises: 0008
Create Date: 2026-12-02 06:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")
SUPERADMIN_ID = uuid.UUID("00000000-0000-4000-8000-000000000004")


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"],
        ["user_account.id"],
        name=f"fk_{table}_user_id_user_account",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    auth_time_default = sa.text("CURRENT_TIMESTAMP" if postgresql else "'1970-01-01 00:00:00'")
    op.add_column(
        "auth_session",
        sa.Column("aal", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
    )
    op.add_column(
        "auth_session",
        sa.Column("amr", sa.JSON(), nullable=False, server_default=sa.text("'[\"pwd\"]'")),
    )
    op.add_column(
        "auth_session",
        sa.Column(
            "auth_time",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=auth_time_default,
        ),
    )
    op.execute("UPDATE auth_session SET auth_time = created_at")
    op.add_column(
        "role",
        sa.Column("mfa_required", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    role = sa.table("role", sa.column("id", sa.Uuid()), sa.column("mfa_required", sa.Boolean()))
    op.execute(
        role.update().where(role.c.id.in_([ADMIN_ID, SUPERADMIN_ID])).values(mfa_required=True)
    )

    op.create_table(
        "mfa_factor",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mfa_factor"),
        _user_fk("mfa_factor"),
    )
    op.create_index("ix_mfa_factor_user_id", "mfa_factor", ["user_id"])
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mfa_recovery_code"),
        _user_fk("mfa_recovery_code"),
    )
    op.create_index(
        "ix_mfa_recovery_code_user_id_code_hash", "mfa_recovery_code", ["user_id", "code_hash"]
    )
    op.create_table(
        "mfa_challenge",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("client_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("amr", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mfa_challenge"),
        _user_fk("mfa_challenge"),
        sa.UniqueConstraint("token_hash", name="uq_mfa_challenge_token_hash"),
    )
    op.create_index("ix_mfa_challenge_user_id", "mfa_challenge", ["user_id"])
    op.create_table(
        "trusted_device",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("ip_address", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trusted_device"),
        _user_fk("trusted_device"),
        sa.UniqueConstraint("token_hash", name="uq_trusted_device_token_hash"),
    )
    op.create_index("ix_trusted_device_user_id", "trusted_device", ["user_id"])
    role_permission = sa.table(
        "role_permission", sa.column("role_id", sa.Uuid()), sa.column("permission", sa.String())
    )
    op.bulk_insert(role_permission, [{"role_id": ADMIN_ID, "permission": "users:mfa_reset"}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permission WHERE permission = 'users:mfa_reset'"))
    op.drop_index("ix_trusted_device_user_id", table_name="trusted_device")
    op.drop_table("trusted_device")
    op.drop_index("ix_mfa_challenge_user_id", table_name="mfa_challenge")
    op.drop_table("mfa_challenge")
    op.drop_index("ix_mfa_recovery_code_user_id_code_hash", table_name="mfa_recovery_code")
    op.drop_table("mfa_recovery_code")
    op.drop_index("ix_mfa_factor_user_id", table_name="mfa_factor")
    op.drop_table("mfa_factor")
    with op.batch_alter_table("role") as batch:
        batch.drop_column("mfa_required")
    with op.batch_alter_table("auth_session") as batch:
        batch.drop_column("auth_time")
        batch.drop_column("amr")
        batch.drop_column("aal")
