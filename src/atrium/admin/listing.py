"""Reading accounts as an administrator: the searchable list and one account."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.admin.repository import NULLABLE_SORTS, AdminUserRepository, Position, UserFilter
from atrium.admin.schemas import AccountStatus, AdminUserRead, UserSort
from atrium.context import AppContext
from atrium.core.pagination import CursorCodec, CursorField, Page
from atrium.models import User
from atrium.rbac.repository import RoleRepository
from atrium.rbac.resolver import permission_resolver
from atrium.users.exceptions import UserNotFound


def _value_type(key: str) -> CursorField:
    if key == "email":
        return CursorField.STR
    return CursorField.DATETIME_OR_NULL if key in NULLABLE_SORTS else CursorField.DATETIME


# One codec per ordering: a cursor of one sort is refused by the others.
_CURSORS = {
    sort: CursorCodec(
        f"users:{sort.value}", v=_value_type(sort.value.lstrip("-")), id=CursorField.UUID
    )
    for sort in UserSort
}


def admin_user_read(user: User, roles: list[str]) -> AdminUserRead:
    status = AccountStatus.deleted if user.deleted_at is not None else AccountStatus(user.status)
    return AdminUserRead(
        id=user.id,
        email=user.email,
        username=user.username,
        full_name=user.full_name,
        status=status,
        email_verified=user.email_verified_at is not None,
        profile_verified=user.profile_verified,
        roles=roles,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
        deleted_at=user.deleted_at,
    )


def _sort_value(user: User, key: str) -> Any:
    return {"created_at": user.created_at, "email": user.email_normalized}.get(
        key, user.last_login_at
    )


class UserListing:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.users = AdminUserRepository(db)
        self.roles = RoleRepository(db)

    async def list_users(
        self,
        filters: UserFilter,
        sort: UserSort,
        limit: int,
        cursor: str | None,
        role: str | None = None,
    ) -> Page[AdminUserRead]:
        """One page of accounts and the cursor of the next (two queries: the page and
        the roles of its accounts; three when a ``last_login_at`` page reaches the
        accounts that never logged in).

        Raises:
            InvalidCursor: 400, not a cursor of this list in this ``sort``.
        """
        key = sort.value.lstrip("-")
        codec = _CURSORS[sort]
        after = None
        if cursor:
            position = codec.decode(cursor)
            after = Position(position["v"], position["id"])
        if role is not None:
            node = (await permission_resolver(self.ctx).graph()).roles.get(role)
            if node is None:
                return Page(items=[], next_cursor=None)
            filters = dataclasses.replace(filters, role_id=node.id)
        rows = await self.users.list_users(
            filters,
            sort=key,
            descending=sort.value.startswith("-"),
            limit=limit,
            after=after,
        )
        roles = await self.roles.role_names_of_many([u.id for u in rows[:limit]])
        return codec.page(
            rows,
            limit,
            lambda u: {"v": _sort_value(u, key), "id": u.id},
            lambda u: admin_user_read(u, roles[u.id]),
        )

    async def get_user(self, user_id: uuid.UUID) -> AdminUserRead:
        """Raises UserNotFound (404). Soft-deleted accounts are shown (status ``deleted``)."""
        user = await self.db.get(User, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return admin_user_read(user, await self.roles.role_names_of(user_id))
