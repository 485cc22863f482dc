"""Roles and permissions, admin account fields, the audit trail.

Creates ``role``, ``role_permission``, ``role_parent``, ``user_role`` and ``audit_event``;
adds ``username``, ``profile_verified`` and ``deleted_at`` to ``user_account`` with the
indexes of the admin user list (pg_trgm GIN indexes for substring search on PostgreSQL
only); creates the built-in roles; gives every existing account the ``user`` role and
every ``is_superuser`` account the ``superadmin`` role, then drops ``is_superuser``
(downgrade restores it from the role).

The built-in roles are written out here rather than imported, so that this revision never
changes when the application's catalogue does.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 08:50:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_ID = "00000000-0000-4000-8000-000000000001"
MODERATOR_ID = "00000000-0000-4000-8000-000000000002"
ADMIN_ID = "00000000-0000-4000-8000-000000000003"
SUPERADMIN_ID = "00000000-0000-4000-8000-000000000004"

ROLES = [
    (USER_ID, "user", "Every registered account.", ["profiles:read"], []),
    (
        MODERATOR_ID,
        "moderator",
        "Moderates profiles; can view accounts.",
        ["profiles:moderate", "users:read"],
        [USER_ID],
    ),
    (
        ADMIN_ID,
        "admin",
        "Manages accounts, sessions and role grants; reads the audit trail.",
        [
            "users:write",
            "users:delete",
            "sessions:revoke",
            "roles:read",
            "roles:assign",
            "audit:read",
        ],
        [MODERATOR_ID],
    ),
    (SUPERADMIN_ID, "superadmin", "Every permission, including managing roles.", [], [ADMIN_ID]),
]

TRIGRAM_COLUMNS = ("email", "username", "full_name")


def upgrade() -> None:
    is_pg = op.get_context().dialect.name == "postgresql"

    role = op.create_table(
        "role",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("is_builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role")),
        sa.UniqueConstraint("name", name=op.f("uq_role_name")),
    )
    role_permission = op.create_table(
        "role_permission",
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("permission", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["role.id"],
            name=op.f("fk_role_permission_role_id_role"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("role_id", "permission", name=op.f("pk_role_permission")),
    )
    role_parent = op.create_table(
        "role_parent",
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["role.id"],
            name=op.f("fk_role_parent_parent_id_role"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["role.id"], name=op.f("fk_role_parent_role_id_role"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_id", "parent_id", name=op.f("pk_role_parent")),
    )
    op.create_index("ix_role_parent_parent_id", "role_parent", ["parent_id"], unique=False)
    op.create_table(
        "user_role",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.Column("user_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["role.id"], name=op.f("fk_user_role_role_id_role"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_role_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_user_role")),
    )
    op.create_index(
        "ix_user_role_role_id_user_created_at",
        "user_role",
        ["role_id", "user_created_at", "user_id"],
        unique=False,
    )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_occurred_at_id", "audit_event", ["occurred_at", "id"])
    op.create_index(
        "ix_audit_event_actor_id_occurred_at", "audit_event", ["actor_id", "occurred_at", "id"]
    )
    op.create_index(
        "ix_audit_event_target_id_occurred_at", "audit_event", ["target_id", "occurred_at", "id"]
    )
    op.create_index(
        "ix_audit_event_action_occurred_at", "audit_event", ["action", "occurred_at", "id"]
    )

    # Built-in roles and the data migration from is_superuser.
    now = datetime.now(UTC)
    op.bulk_insert(
        role,
        [
            {
                "id": _uuid(rid),
                "name": name,
                "description": description,
                "is_builtin": True,
                "created_at": now,
                "updated_at": now,
            }
            for rid, name, description, _, _ in ROLES
        ],
    )
    op.bulk_insert(
        role_permission,
        [{"role_id": _uuid(rid), "permission": p} for rid, _, _, perms, _ in ROLES for p in perms],
    )
    op.bulk_insert(
        role_parent,
        [
            {"role_id": _uuid(rid), "parent_id": _uuid(p)}
            for rid, _, _, _, parents in ROLES
            for p in parents
        ],
    )
    user_account = sa.table(
        "user_account",
        sa.column("id", sa.Uuid()),
        sa.column("is_superuser", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    user_role = sa.table(
        "user_role",
        sa.column("user_id", sa.Uuid()),
        sa.column("role_id", sa.Uuid()),
        sa.column("granted_at", sa.DateTime(timezone=True)),
        sa.column("granted_by", sa.Uuid()),
        sa.column("user_created_at", sa.DateTime(timezone=True)),
    )
    for role_id, where in ((USER_ID, None), (SUPERADMIN_ID, user_account.c.is_superuser)):
        query = sa.select(
            user_account.c.id,
            sa.literal(_uuid(role_id), sa.Uuid()),
            sa.literal(now, sa.DateTime(timezone=True)),
            sa.null(),
            user_account.c.created_at,
        )
        if where is not None:
            query = query.where(where)
        op.execute(
            user_role.insert().from_select(
                ["user_id", "role_id", "granted_at", "granted_by", "user_created_at"], query
            )
        )
    # SQLite recreates the table: online it reflects the live table (so columns added by
    # any other revision survive); offline (`migrate --sql`) there is nothing to reflect,
    # so it is described as revision 0001 left it.
    copy_from = _user_account_0001() if context.is_offline_mode() else None
    with op.batch_alter_table("user_account", copy_from=copy_from) as batch_op:
        batch_op.drop_column("is_superuser")
        batch_op.add_column(sa.Column("username", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("profile_verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_user_account_username"), ["username"])
        batch_op.create_index("ix_user_account_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_user_account_email_normalized_id", ["email_normalized", "id"], unique=False
        )
        batch_op.create_index(
            "ix_user_account_last_login_at_id", ["last_login_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_user_account_deleted_created_at_id",
            ["created_at", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
        )

    if is_pg:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in TRIGRAM_COLUMNS:
            op.execute(
                f"CREATE INDEX ix_user_account_{column}_trgm ON user_account "
                f"USING gin ({column} gin_trgm_ops)"
            )


def _user_account_0001() -> sa.Table:
    return sa.Table(
        "user_account",
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_normalized", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_account"),
        sa.UniqueConstraint("email_normalized", name="uq_user_account_email_normalized"),
    )


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_superuser", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        sa.text(
            "UPDATE user_account SET is_superuser = true WHERE id IN "
            "(SELECT user_id FROM user_role WHERE role_id = :rid)"
        ).bindparams(sa.bindparam("rid", _uuid(SUPERADMIN_ID), sa.Uuid()))
    )
    if bind.dialect.name == "postgresql":
        for column in TRIGRAM_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_user_account_{column}_trgm")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.alter_column("is_superuser", server_default=None)
        batch_op.drop_index("ix_user_account_deleted_created_at_id")
        batch_op.drop_index("ix_user_account_last_login_at_id")
        batch_op.drop_index("ix_user_account_email_normalized_id")
        batch_op.drop_index("ix_user_account_created_at_id")
        batch_op.drop_constraint(batch_op.f("uq_user_account_username"), type_="unique")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("profile_verified")
        batch_op.drop_column("username")
    for index in (
        "ix_audit_event_action_occurred_at",
        "ix_audit_event_target_id_occurred_at",
        "ix_audit_event_actor_id_occurred_at",
        "ix_audit_event_occurred_at_id",
    ):
        op.drop_index(index, table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_user_role_role_id_user_created_at", table_name="user_role")
    op.drop_table("user_role")
    op.drop_index("ix_role_parent_parent_id", table_name="role_parent")
    op.drop_table("role_parent")
    op.drop_table("role_permission")
    op.drop_table("role")
