"""Domain events, their deliveries, notifications and broadcasts.

Creates ``event`` (the event outbox, written in the transaction of each change),
``event_delivery`` (one row per event and consumer: lease, attempts, backoff),
``notification`` (an account's inbox), ``notification_broadcast`` and ``job_run`` (the
last run of each scheduled job); grants the new
``notifications:broadcast`` permission to the built-in ``admin`` role (its id written out,
so this revision never changes with the application's catalogue).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDISPATCHED = sa.text("dispatched_at IS NULL")
ADMIN_ID = uuid.UUID("00000000-0000-4000-8000-000000000003")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _at("occurred_at"),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        _at("dispatched_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_event"),
    )
    op.create_index(
        "ix_event_undispatched",
        "event",
        ["occurred_at", "id"],
        postgresql_where=UNDISPATCHED,
        sqlite_where=UNDISPATCHED,
    )
    op.create_index("ix_event_occurred_at_id", "event", ["occurred_at", "id"])
    op.create_table(
        "event_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at"),
        _at("locked_until", nullable=True),
        sa.Column("lease_id", sa.Uuid(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        _at("created_at"),
        _at("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name="fk_event_delivery_event_id_event", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_event_delivery"),
        sa.UniqueConstraint("event_id", "consumer", name="uq_event_delivery_event_id_consumer"),
    )
    op.create_index(
        "ix_event_delivery_status_next_attempt_at",
        "event_delivery",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_event_delivery_consumer_status", "event_delivery", ["consumer", "status"])
    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("link", sa.String(length=2048), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        _at("created_at"),
        _at("read_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_notification_user_id_user_account",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notification"),
        sa.UniqueConstraint("user_id", "source_id", name="uq_notification_user_id_source_id"),
    )
    op.create_index(
        "ix_notification_user_id_created_at", "notification", ["user_id", "created_at", "id"]
    )
    op.create_table(
        "notification_broadcast",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("link", sa.String(length=2048), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        _at("created_at"),
        sa.Column("fanned_out_until", sa.Uuid(), nullable=True),
        _at("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_broadcast"),
    )
    op.create_table(
        "job_run",
        sa.Column("name", sa.String(length=128), nullable=False),
        _at("last_run_at"),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_run"),
    )
    role_permission = sa.table(
        "role_permission", sa.column("role_id", sa.Uuid()), sa.column("permission", sa.String())
    )
    op.bulk_insert(
        role_permission, [{"role_id": ADMIN_ID, "permission": "notifications:broadcast"}]
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permission WHERE permission = 'notifications:broadcast'"))
    op.drop_table("job_run")
    op.drop_table("notification_broadcast")
    op.drop_index("ix_notification_user_id_created_at", table_name="notification")
    op.drop_table("notification")
    op.drop_index("ix_event_delivery_consumer_status", table_name="event_delivery")
    op.drop_index("ix_event_delivery_status_next_attempt_at", table_name="event_delivery")
    op.drop_table("event_delivery")
    op.drop_index("ix_event_occurred_at_id", table_name="event")
    op.drop_index("ix_event_undispatched", table_name="event")
    op.drop_table("event")
