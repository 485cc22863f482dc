"""HTTP routes of account administration: /api/v1/admin/users*."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from atrium.admin.dependencies import BulkCaller, SessionsRevoke, UsersDelete, UsersRead, UsersWrite
from atrium.admin.exceptions import (
    BulkActionFailed,
    RetentionExpired,
    UserDeleted,
    UserNotDeleted,
    UserNotFound,
)
from atrium.admin.repository import UserFilter
from atrium.admin.schemas import (
    AccountStatus,
    AdminUserRead,
    AdminUserUpdate,
    BulkRequest,
    BulkResponse,
    SessionsRevoked,
    UserSort,
)
from atrium.admin.service import AdminService
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from atrium.core.params import UtcDatetime
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.exceptions import (
    EscalationRefused,
    LastSuperadmin,
    PermissionDenied,
    RoleNotFound,
)

router = APIRouter(prefix="/admin/users", tags=["admin: users"])

_AUTH = (NotAuthenticated, InvalidToken, PermissionDenied)


@router.get(
    "",
    response_model=Page[AdminUserRead],
    responses=problem_responses(*_AUTH, InvalidCursor, ValidationFailed),
)
async def list_users(
    _: UsersRead,
    db: DbSession,
    ctx: Ctx,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="Substring of email, username or name."),
    ] = None,
    role: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[
        AccountStatus | None, Query(description="Default: every account not deleted.")
    ] = None,
    email_verified: bool | None = None,
    created_after: Annotated[UtcDatetime | None, Query(description="Inclusive.")] = None,
    created_before: Annotated[UtcDatetime | None, Query(description="Exclusive.")] = None,
    sort: UserSort = UserSort.created_at_desc,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Page[AdminUserRead]:
    """Search and filter accounts; keyset pagination in a stable order."""
    filters = UserFilter(
        q=q,
        status=status.value if status else None,
        email_verified=email_verified,
        created_after=created_after,
        created_before=created_before,
    )
    return await AdminService(db, ctx).list_users(filters, sort, limit, cursor, role)


@router.post(
    "/bulk",
    response_model=BulkResponse,
    responses=problem_responses(
        *_AUTH, EscalationRefused, RoleNotFound, BulkActionFailed, ValidationFailed
    ),
)
async def bulk_action(
    body: BulkRequest,
    caller: BulkCaller,
    db: DbSession,
    ctx: Ctx,
) -> BulkResponse:
    """One action on up to 1000 accounts, all or nothing; needs the action's permission
    (`users:write` for suspend/activate, `users:delete`, `roles:assign`)."""
    return await AdminService(db, ctx).bulk(caller, body)


@router.get(
    "/{user_id:uuid}",
    response_model=AdminUserRead,
    responses=problem_responses(*_AUTH, UserNotFound),
)
async def get_user(
    user_id: uuid.UUID,
    _: UsersRead,
    db: DbSession,
    ctx: Ctx,
) -> AdminUserRead:
    """One account, soft-deleted ones included."""
    return await AdminService(db, ctx).get_user(user_id)


@router.patch(
    "/{user_id:uuid}",
    response_model=AdminUserRead,
    responses=problem_responses(
        *_AUTH, EscalationRefused, UserNotFound, UserDeleted, LastSuperadmin, ValidationFailed
    ),
)
async def update_user(
    user_id: uuid.UUID,
    body: AdminUserUpdate,
    caller: UsersWrite,
    db: DbSession,
    ctx: Ctx,
) -> AdminUserRead:
    """Change status (suspending revokes every session), verified flags or name."""
    return await AdminService(db, ctx).update_user(caller, user_id, body)


@router.post(
    "/{user_id:uuid}/sessions/revoke",
    response_model=SessionsRevoked,
    responses=problem_responses(*_AUTH, EscalationRefused, UserNotFound),
)
async def revoke_sessions(
    user_id: uuid.UUID,
    caller: SessionsRevoke,
    db: DbSession,
    ctx: Ctx,
) -> SessionsRevoked:
    """Revoke every session of an account; its tokens stop working at once."""
    return await AdminService(db, ctx).revoke_sessions(caller, user_id)


@router.delete(
    "/{user_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, EscalationRefused, UserNotFound, LastSuperadmin),
)
async def delete_user(
    user_id: uuid.UUID,
    caller: UsersDelete,
    db: DbSession,
    ctx: Ctx,
) -> Response:
    """Soft-delete an account: it can no longer log in and is hidden; restorable within
    the retention window."""
    await AdminService(db, ctx).delete_user(caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{user_id:uuid}/restore",
    response_model=AdminUserRead,
    responses=problem_responses(
        *_AUTH, EscalationRefused, UserNotFound, UserNotDeleted, RetentionExpired
    ),
)
async def restore_user(
    user_id: uuid.UUID,
    caller: UsersDelete,
    db: DbSession,
    ctx: Ctx,
) -> AdminUserRead:
    """Restore a soft-deleted account within the retention window."""
    return await AdminService(db, ctx).restore_user(caller, user_id)
