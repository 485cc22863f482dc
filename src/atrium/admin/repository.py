"""Every query of account administration: the admin user list and bulk updates."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import User, UserRole
from atrium.users.repository import UserRepository

SORT_COLUMNS: dict[str, Any] = {
    "created_at": User.created_at,
    "email": User.email_normalized,
    "last_login_at": User.last_login_at,
}
# The same keys as copied into user_role, for a list filtered by role.
ROLE_SORT_COLUMNS: dict[str, Any] = {
    "created_at": UserRole.user_created_at,
    "email": UserRole.user_email_normalized,
    "last_login_at": UserRole.user_last_login_at,
}
NULLABLE_SORTS = {"last_login_at"}


@dataclass(frozen=True)
class UserFilter:
    q: str | None = None
    role_id: uuid.UUID | None = None  # resolved from the role's name by the caller
    status: str | None = None  # active | suspended | deleted; None: every undeleted account
    email_verified: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: its last row's sort value and id."""

    value: Any
    id: uuid.UUID


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _role_id(f: UserFilter) -> Any:
    # Inlined, not a bind parameter: the planner then uses the column statistics of
    # user_role.role_id, and a cached generic plan cannot hide the value.
    return bindparam("role_id", f.role_id, type_=UserRole.role_id.type, literal_execute=True)


def _conditions(f: UserFilter) -> list[ColumnElement[bool]]:
    """Every filter but the role, which ``list_users`` turns into a join."""
    out: list[ColumnElement[bool]] = []
    if f.q:
        # Each column has a pg_trgm GIN index on PostgreSQL: a BitmapOr of three scans.
        pattern = _like_pattern(f.q)
        out.append(
            or_(
                User.email.ilike(pattern, escape="\\"),
                User.username.ilike(pattern, escape="\\"),
                User.full_name.ilike(pattern, escape="\\"),
            )
        )
    if f.status == "deleted":
        out.append(User.deleted_at.is_not(None))
    else:
        out.append(User.deleted_at.is_(None))
        if f.status is not None:
            out.append(User.status == f.status)
    if f.email_verified is not None:
        out.append(
            User.email_verified_at.is_not(None)
            if f.email_verified
            else User.email_verified_at.is_(None)
        )
    if f.created_after is not None:
        out.append(User.created_at >= f.created_after)
    if f.created_before is not None:
        out.append(User.created_at < f.created_before)
    return out


class AdminUserRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def list_users(
        self,
        filters: UserFilter,
        *,
        sort: str,
        descending: bool,
        limit: int,
        after: Position | None,
    ) -> list[User]:
        """Up to ``limit + 1`` accounts after ``after`` in ``(sort, id)`` order (keyset
        pagination: each page costs the same at any depth, no OFFSET, no COUNT).

        One query; two when the sort column is nullable and a page crosses from the
        accounts with a value to those without (which come last in both directions).
        """
        n = limit + 1
        base: Select[Any]
        if filters.role_id is not None:
            # The role's holders in sort order straight from one of user_role's
            # (role_id, <sort key>, user_id) indexes: a page costs the same for a role of
            # five holders or of a million, and the account rows fetched are the page's.
            base = (
                select(User)
                .join(
                    UserRole,
                    and_(UserRole.user_id == User.id, UserRole.role_id == _role_id(filters)),
                )
                .where(*_conditions(filters))
            )
            column, id_column = ROLE_SORT_COLUMNS[sort], UserRole.user_id
        else:
            base = select(User).where(*_conditions(filters))
            column, id_column = SORT_COLUMNS[sort], User.id
        if sort not in NULLABLE_SORTS:
            return await self._page(base, column, descending, after, n, id_column)
        rows: list[User] = []
        if after is None or after.value is not None:
            rows = await self._page(
                base.where(column.is_not(None)), column, descending, after, n, id_column
            )
        if len(rows) < n:
            nulls = base.where(column.is_(None))
            if after is not None and after.value is None:
                id_bound = bindparam(None, after.id, type_=User.id.type)
                nulls = nulls.where(id_column < id_bound if descending else id_column > id_bound)
            order = id_column.desc() if descending else id_column.asc()
            rows += list(
                (await self.db.execute(nulls.order_by(order).limit(n - len(rows)))).scalars()
            )
        return rows

    async def _page(
        self,
        stmt: Select[Any],
        column: Any,
        descending: bool,
        after: Position | None,
        n: int,
        id_column: Any = User.id,
    ) -> list[User]:
        if after is not None:
            key = tuple_(column, id_column)
            bound = tuple_(
                bindparam(None, after.value, type_=column.type),
                bindparam(None, after.id, type_=User.id.type),
            )
            stmt = stmt.where(key < bound if descending else key > bound)
        if descending:
            stmt = stmt.order_by(column.desc(), id_column.desc())
        else:
            stmt = stmt.order_by(column.asc(), id_column.asc())
        return list((await self.db.execute(stmt.limit(n))).scalars())

    async def get_many(self, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, User]:
        rows = await self.db.execute(select(User).where(User.id.in_(list(user_ids))))
        return {u.id: u for u in rows.scalars()}

    async def set_fields(self, user_ids: Sequence[uuid.UUID], **values: Any) -> None:
        if user_ids:
            await self.db.execute(
                update(User)
                .where(User.id.in_(list(user_ids)))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def revoke_sessions_of(
        self,
        user_ids: Sequence[uuid.UUID],
        now: datetime,
        reason: str,
        actor: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke every live session of ``user_ids`` in one statement; the session ids."""
        return await UserRepository(self.db).revoke_sessions(user_ids, now, reason, actor=actor)

    async def expired_deleted(self, before: datetime, limit: int) -> list[uuid.UUID]:
        return list(
            (
                await self.db.execute(
                    select(User.id)
                    .where(
                        User.deleted_at.is_not(None),
                        User.deleted_at < before,
                        User.deletion_due_at.is_(None),
                    )
                    .order_by(User.deleted_at)
                    .limit(limit)
                )
            ).scalars()
        )

    async def purge(self, user_ids: Sequence[uuid.UUID]) -> None:
        await self.db.execute(delete(User).where(User.id.in_(list(user_ids))))
