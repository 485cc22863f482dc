"""An account's role grants (rows of ``user_role``): the queries that registration,
bootstrap, the principal loader and role management share. What a role *means* (its
permissions and parents) is :mod:`atrium.rbac`'s; which roles an account holds is part of
the account."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import Role, User, UserRole
from atrium.models.role import BUILTIN_ROLE_IDS, GRANT_COLUMNS


async def role_names_of(db: AsyncSession, user_id: uuid.UUID) -> list[str]:
    """The names of the roles ``user_id`` holds directly, sorted (one query)."""
    return list(
        (
            await db.execute(
                select(Role.name)
                .join(UserRole, UserRole.role_id == Role.id)
                .where(UserRole.user_id == user_id)
                .order_by(Role.name)
            )
        ).scalars()
    )


async def grant_role(
    db: AsyncSession,
    user_ids: Collection[uuid.UUID],
    role_id: uuid.UUID,
    now: datetime,
    granted_by: uuid.UUID | None,
) -> set[uuid.UUID]:
    """Give ``role_id`` to each of ``user_ids`` that lacks it; the ids that gained it.
    (Two statements: the ids already holding it, then one INSERT … SELECT that copies
    each account's sort keys: ``created_at``, ``email_normalized``, ``last_login_at``.)"""
    if not user_ids:
        return set()
    held = set(
        (
            await db.execute(
                select(UserRole.user_id).where(
                    UserRole.role_id == role_id, UserRole.user_id.in_(list(user_ids))
                )
            )
        ).scalars()
    )
    new = [uid for uid in user_ids if uid not in held]
    if new:
        rows = select(
            User.id,
            bindparam("role_id", role_id, type_=UserRole.role_id.type),
            bindparam("granted_at", now, type_=UserRole.granted_at.type),
            bindparam("granted_by", granted_by, type_=UserRole.granted_by.type),
            User.created_at,
            User.email_normalized,
            User.last_login_at,
        )
        # FOR SHARE (PostgreSQL; SQLite serialises writers anyway): a login or email
        # change of these accounts waits for this grant, so the trigger that then
        # updates the grants' copies sees this row; one already under way finished
        # first, and its values are the ones read here. Without it, READ COMMITTED
        # lets both commit and the copy keeps the old value.
        rows = rows.where(User.id.in_(new)).with_for_update(read=True)
        await db.execute(insert(UserRole).from_select(GRANT_COLUMNS, rows))
    return set(new)


async def grant_to_new_account(db: AsyncSession, user: User, name: str) -> None:
    """Give the built-in role ``name`` to ``user``, an account this transaction has just
    inserted (one INSERT; ``granted_at`` is the account's ``created_at``).

    No other transaction can see the account yet, so it holds no role and nothing can
    change its sort keys meanwhile: :func:`grant_role`'s check for an existing grant and
    its locking read of the account are not needed, and the copies of ``created_at``,
    ``email_normalized`` and ``last_login_at`` are the values in hand."""
    await db.execute(
        insert(UserRole).values(
            user_id=user.id,
            role_id=BUILTIN_ROLE_IDS[name],
            granted_at=user.created_at,
            granted_by=None,
            user_created_at=user.created_at,
            user_email_normalized=user.email_normalized,
            user_last_login_at=user.last_login_at,
        )
    )


async def grant_builtin_role(
    db: AsyncSession, user_id: uuid.UUID, name: str, now: datetime
) -> None:
    """Give the built-in role ``name`` (``user``, ``moderator``, ``admin``,
    ``superadmin``) to a user who does not hold it yet."""
    await grant_role(db, [user_id], BUILTIN_ROLE_IDS[name], now, None)
