"""Roles, the permissions they grant, their inheritance, and who holds them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import Boolean, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base, uuid_pk


class Role(Base):
    """A named set of permissions. ``is_builtin`` roles are created by the migration and
    cannot be deleted; ``name`` never changes once created."""

    __tablename__ = "role"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    is_builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Holders of this role, or of any role inheriting from it, must use a second factor
    # (migration 0006; on for admin and superadmin by default).
    mfa_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RolePermission(Base):
    """A permission (``resource:action``, see :mod:`atrium.rbac.permissions`) of a role."""

    __tablename__ = "role_permission"

    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)


class RoleParent(Base):
    """``role_id`` inherits every permission of ``parent_id`` (the graph is acyclic)."""

    __tablename__ = "role_parent"
    __table_args__ = (Index("ix_role_parent_parent_id", "parent_id"),)

    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )


class UserRole(Base):
    """A role held by a user. ``granted_by`` is kept as a plain id: the granter may be gone.

    ``user_created_at``, ``user_email_normalized`` and ``user_last_login_at`` copy the
    account's sort keys so that "the holders of a role in <key> order" walks one index,
    ``(role_id, <key>, user_id)``, at any number of holders (the admin list's role filter
    with each of its sorts). ``created_at`` never changes; the other two are kept equal to
    the account's by a database trigger on ``user_account`` (migration 0005), so every
    UPDATE of an email or a last login, from any code path, updates the copies in the same
    statement.
    """

    __tablename__ = "user_role"
    __table_args__ = (
        Index("ix_user_role_role_id_user_created_at", "role_id", "user_created_at", "user_id"),
        Index(
            "ix_user_role_role_id_user_email_normalized",
            "role_id",
            "user_email_normalized",
            "user_id",
        ),
        Index(
            "ix_user_role_role_id_user_last_login_at", "role_id", "user_last_login_at", "user_id"
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("role.id", ondelete="CASCADE"), primary_key=True
    )
    granted_at: Mapped[datetime]
    granted_by: Mapped[uuid.UUID | None]
    user_created_at: Mapped[datetime]
    user_email_normalized: Mapped[str] = mapped_column(String(320))
    user_last_login_at: Mapped[datetime | None]


# Every column of a grant, in the order in which the grant's INSERT … SELECT
# (rbac/repository.py) and `atrium seed`'s COPY write them.
GRANT_COLUMNS = (
    "user_id",
    "role_id",
    "granted_at",
    "granted_by",
    "user_created_at",
    "user_email_normalized",
    "user_last_login_at",
)


USER, MODERATOR, ADMIN, SUPERADMIN = "user", "moderator", "admin", "superadmin"

# Built-in roles whose holders must use a second factor (``role.mfa_required``, set by
# migration 0006).
MFA_REQUIRED_BUILTINS: Final[frozenset[str]] = frozenset({ADMIN, SUPERADMIN})

# Built-in roles as created by migration 0003, with ``files:manage`` given to admin by 0004,
# ``notifications:broadcast`` by 0009 and ``webhooks:manage`` by 0012
# (fixed ids so data migrations and registration can refer to them without a lookup).
# Their permissions are listed in atrium.rbac.permissions.BUILTIN_ROLES; ``superadmin``
# holds every permission of the catalogue, including any added later, rather than a
# stored list.
BUILTIN_ROLE_IDS: Final[dict[str, uuid.UUID]] = {
    USER: uuid.UUID("00000000-0000-4000-8000-000000000001"),
    MODERATOR: uuid.UUID("00000000-0000-4000-8000-000000000002"),
    ADMIN: uuid.UUID("00000000-0000-4000-8000-000000000003"),
    SUPERADMIN: uuid.UUID("00000000-0000-4000-8000-000000000004"),
}
