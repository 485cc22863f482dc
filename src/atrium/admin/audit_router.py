"""HTTP route of the audit trail for administrators: /api/v1/admin/audit-events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from atrium.admin.dependencies import AuditRead
from atrium.audit import service
from atrium.audit.repository import AuditFilter
from atrium.audit.schemas import AuditEventRead
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from atrium.core.params import UtcDatetime
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.dependencies import PermissionDenied

router = APIRouter(tags=["audit"])

_ERRORS = (NotAuthenticated, InvalidToken, InvalidCursor, ValidationFailed)


@router.get(
    "/admin/audit-events",
    response_model=Page[AuditEventRead],
    responses=problem_responses(*_ERRORS, PermissionDenied),
)
async def list_audit_events(
    _: AuditRead,
    db: DbSession,
    actor_id: uuid.UUID | None = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[UtcDatetime | None, Query(description="Inclusive lower bound.")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Exclusive upper bound.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[AuditEventRead]:
    """The audit trail, newest first, filtered by actor, target, action and time range."""
    filters = AuditFilter(
        actor_id=actor_id,
        target_id=target_id,
        target_type=target_type,
        action=action,
        since=since,
        until=until,
    )
    return await service.list_events(db, filters, limit=limit, cursor=cursor)
