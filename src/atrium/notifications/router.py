"""HTTP routes of notifications: /api/v1/users/me/notifications* and the admin broadcast."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from atrium.auth.dependencies import CurrentPrincipal
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.pagination import InvalidCursor, Page
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.notifications.broadcast import create_broadcast
from atrium.notifications.exceptions import NotificationNotFound
from atrium.notifications.schemas import (
    BroadcastCreate,
    BroadcastRead,
    MarkedRead,
    NotificationRead,
    UnreadCount,
)
from atrium.notifications.service import NotificationService
from atrium.rbac.authorized import Authorized
from atrium.rbac.dependencies import require
from atrium.rbac.exceptions import PermissionDenied, RoleNotFound

router = APIRouter(prefix="/users/me/notifications", tags=["notifications"])
admin_router = APIRouter(prefix="/admin/notifications", tags=["admin: notifications"])

_AUTH = (NotAuthenticated, InvalidToken)
Broadcaster = Annotated[Authorized, require("notifications:broadcast")]


@router.get(
    "", response_model=Page[NotificationRead], responses=problem_responses(*_AUTH, InvalidCursor)
)
async def list_notifications(
    principal: CurrentPrincipal,
    db: DbSession,
    ctx: Ctx,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    unread: Annotated[bool, Query(description="Only the unread notices.")] = False,
) -> Page[NotificationRead]:
    """The signed-in account's notices, newest first (cursor pagination)."""
    return await NotificationService(db, ctx).list_page(
        principal.user_id, limit=limit, cursor=cursor, unread=unread
    )


@router.get("/unread-count", response_model=UnreadCount, responses=problem_responses(*_AUTH))
async def unread_count(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> UnreadCount:
    """How many of the signed-in account's notices are unread."""
    return UnreadCount(count=await NotificationService(db, ctx).unread_count(principal.user_id))


@router.post("/read-all", response_model=MarkedRead, responses=problem_responses(*_AUTH))
async def read_all(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> MarkedRead:
    """Mark every notice of the signed-in account read."""
    return MarkedRead(updated=await NotificationService(db, ctx).mark_all_read(principal.user_id))


@router.post(
    "/{notification_id}/read",
    response_model=NotificationRead,
    responses=problem_responses(*_AUTH, NotificationNotFound),
)
async def read_one(
    notification_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> NotificationRead:
    """Mark one notice read (idempotent)."""
    return await NotificationService(db, ctx).mark_read(principal.user_id, notification_id)


@router.delete(
    "/{notification_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, NotificationNotFound),
)
async def delete_one(
    notification_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Remove one notice from the inbox."""
    await NotificationService(db, ctx).delete(principal.user_id, notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.post(
    "/broadcast",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BroadcastRead,
    responses=problem_responses(*_AUTH, PermissionDenied, RoleNotFound, ValidationFailed),
)
async def broadcast(
    body: BroadcastCreate, caller: Broadcaster, db: DbSession, ctx: Ctx
) -> BroadcastRead:
    """Send a notice to every active account or to a role's holders (written by the
    worker in batches; `notifications:broadcast`)."""
    return await create_broadcast(db, ctx, caller.user_id, body)
