"""Activity rollup and analytics.

Creates ``user_activity_day`` (per account and UTC day: first/last seen, requests,
logins, active sessions, truncated network), ``login_day`` (login counts by method and
outcome), and the rollups of the ``analytics.rollup`` job: ``analytics_day``,
``session_device_day`` and ``retention_cohort``. Grants the new ``analytics:read``
permission to the built-in ``admin`` role (its id written out, so this revision never
changes with the application's catalogue).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:30:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "user_activity_day",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _at("first_seen_at"),
        _at("last_seen_at"),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("logins", sa.Integer(), nullable=False),
        sa.Column("active_sessions", sa.Integer(), nullable=False),
        sa.Column("ip_prefix", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_user_activity_day_user_id_user_account",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name="pk_user_activity_day"),
    )
    op.create_index("ix_user_activity_day_day_user_id", "user_activity_day", ["day", "user_id"])
    op.create_table(
        "login_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "method", "outcome", name="pk_login_day"),
    )
    op.create_table(
        "analytics_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dau", sa.Integer(), nullable=False),
        sa.Column("wau", sa.Integer(), nullable=False),
        sa.Column("mau", sa.Integer(), nullable=False),
        sa.Column("registrations", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Integer(), nullable=False),
        sa.Column("mfa_accounts", sa.Integer(), nullable=False),
        _at("computed_at"),
        sa.PrimaryKeyConstraint("day", name="pk_analytics_day"),
    )
    op.create_table(
        "session_device_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("device_type", sa.String(length=16), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "device_type", name="pk_session_device_day"),
    )
    op.create_table(
        "retention_cohort",
        sa.Column("cohort_week", sa.Date(), nullable=False),
        sa.Column("week_offset", sa.Integer(), nullable=False),
        sa.Column("cohort_size", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort_week", "week_offset", name="pk_retention_cohort"),
    )
    role_permission = sa.table(
        "role_permission", sa.column("role_id", sa.Uuid()), sa.column("permission", sa.String())
    )
    op.bulk_insert(role_permission, [{"role_id": ADMIN_ID, "permission": "analytics:read"}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permission WHERE permission = 'analytics:read'"))
    op.drop_table("retention_cohort")
    op.drop_table("session_device_day")
    op.drop_table("analytics_day")
    op.drop_table("login_day")
    op.drop_index("ix_user_activity_day_day_user_id", table_name="user_activity_day")
    op.drop_table("user_activity_day")
