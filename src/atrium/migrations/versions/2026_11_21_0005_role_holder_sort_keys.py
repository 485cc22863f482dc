"""Role holders in email and last-login order.

Copies each account's ``email_normalized`` and ``last_login_at`` into every ``user_role``
row it holds (``user_email_normalized``, ``user_last_login_at``), indexes them as
``(role_id, <key>, user_id)``, and adds a trigger on ``user_account`` that keeps the
copies equal to the account's values on every UPDATE, whatever code path makes it. The
admin user list with a role filter then reads one page of holders, in any sort order,
from one index (as ``user_created_at`` already allowed for the creation order).

On PostgreSQL a second trigger fills the copies of a grant inserted without them, so the
previous release keeps granting roles during a rolling upgrade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL_FUNCTION = """
CREATE FUNCTION user_role_copy_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_role
       SET user_email_normalized = NEW.email_normalized,
           user_last_login_at = NEW.last_login_at
     WHERE user_id = NEW.id;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = """
CREATE TRIGGER trg_user_account_role_sort_keys
AFTER UPDATE OF email_normalized, last_login_at ON user_account
FOR EACH ROW
WHEN (OLD.email_normalized IS DISTINCT FROM NEW.email_normalized
      OR OLD.last_login_at IS DISTINCT FROM NEW.last_login_at)
EXECUTE FUNCTION user_role_copy_sort_keys()
"""
# A grant inserted without the copies (by the previous release during a rolling upgrade,
# whose INSERT does not know these columns) takes them from the account, locked FOR SHARE
# so that a concurrent login or email change waits for the grant and then updates it.
# SQLite cannot assign NEW in a trigger; the embedded default is one process, upgraded in
# place.
POSTGRESQL_INSERT_FUNCTION = """
CREATE FUNCTION user_role_fill_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_email_normalized IS NULL THEN
        SELECT u.email_normalized, u.last_login_at
          INTO NEW.user_email_normalized, NEW.user_last_login_at
          FROM user_account u
         WHERE u.id = NEW.user_id
           FOR SHARE;
    END IF;
    RETURN NEW;
END
$$
"""
POSTGRESQL_INSERT_TRIGGER = """
CREATE TRIGGER trg_user_role_fill_sort_keys
BEFORE INSERT ON user_role
FOR EACH ROW
WHEN (NEW.user_email_normalized IS NULL)
EXECUTE FUNCTION user_role_fill_sort_keys()
"""
SQLITE_TRIGGER = """
CREATE TRIGGER trg_user_account_role_sort_keys
AFTER UPDATE OF email_normalized, last_login_at ON user_account
FOR EACH ROW
WHEN OLD.email_normalized IS NOT NEW.email_normalized
     OR OLD.last_login_at IS NOT NEW.last_login_at
BEGIN
    UPDATE user_role
       SET user_email_normalized = NEW.email_normalized,
           user_last_login_at = NEW.last_login_at
     WHERE user_id = NEW.id;
END
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        # Accounts first, in the order the application takes them (an account, then its
        # grants), so no transaction of the running release can deadlock with this one;
        # and no login or email change can land between the backfill below and the
        # trigger that keeps the copies current. Reads go on; account writes wait until
        # this revision commits.
        op.execute("LOCK TABLE user_account IN SHARE ROW EXCLUSIVE MODE")
    op.add_column("user_role", sa.Column("user_email_normalized", sa.String(320), nullable=True))
    op.add_column(
        "user_role", sa.Column("user_last_login_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE user_role SET"
        " user_email_normalized = (SELECT u.email_normalized FROM user_account u"
        " WHERE u.id = user_role.user_id),"
        " user_last_login_at = (SELECT u.last_login_at FROM user_account u"
        " WHERE u.id = user_role.user_id)"
    )
    # SQLite recreates the table: online it reflects the live one; offline (`migrate --sql`)
    # there is nothing to reflect, so it is described as it stands at this point.
    copy_from = _user_role_before_not_null() if context.is_offline_mode() else None
    with op.batch_alter_table("user_role", copy_from=copy_from) as batch:
        batch.alter_column("user_email_normalized", existing_type=sa.String(320), nullable=False)
    op.create_index(
        "ix_user_role_role_id_user_email_normalized",
        "user_role",
        ["role_id", "user_email_normalized", "user_id"],
    )
    op.create_index(
        "ix_user_role_role_id_user_last_login_at",
        "user_role",
        ["role_id", "user_last_login_at", "user_id"],
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)
        op.execute(POSTGRESQL_INSERT_FUNCTION)
        op.execute(POSTGRESQL_INSERT_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def _user_role_before_not_null() -> sa.Table:
    return sa.Table(
        "user_role",
        sa.MetaData(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.Column("user_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_email_normalized", sa.String(320), nullable=True),
        sa.Column("user_last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["role_id"], ["role.id"], name="fk_user_role_role_id_role", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_user_role_user_id_user_account",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name="pk_user_role"),
        sa.Index("ix_user_role_role_id_user_created_at", "role_id", "user_created_at", "user_id"),
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_user_role_fill_sort_keys ON user_role")
        op.execute("DROP FUNCTION IF EXISTS user_role_fill_sort_keys()")
        op.execute("DROP TRIGGER IF EXISTS trg_user_account_role_sort_keys ON user_account")
        op.execute("DROP FUNCTION IF EXISTS user_role_copy_sort_keys()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_user_account_role_sort_keys")
    op.drop_index("ix_user_role_role_id_user_last_login_at", table_name="user_role")
    op.drop_index("ix_user_role_role_id_user_email_normalized", table_name="user_role")
    with op.batch_alter_table("user_role") as batch:
        batch.drop_column("user_last_login_at")
        batch.drop_column("user_email_normalized")
