"""HTTP routes of the audit trail: /api/v1/admin/audit-events, /api/v1/users/me/security-events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from atrium.audit.repository import AuditFilter, AuditRepository
from atrium.audit.schemas import AuditEventRead, SecurityEventRead
from atrium.auth.dependencies import CurrentPrincipal
from atrium.core.db import DbSession
from atrium.core.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
)
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.models import AuditEvent
from atrium.rbac.dependencies import Authorized, require
from atrium.rbac.exceptions import PermissionDenied

router = APIRouter(tags=["audit"])

_KIND = "audit"
_ERRORS = (NotAuthenticated, InvalidToken, InvalidCursor, ValidationFailed)


def _position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    pos = decode_cursor(cursor, kind=_KIND)
    try:
        return datetime.fromisoformat(pos["t"]), uuid.UUID(pos["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor("The cursor is not valid.") from exc


def _next(rows: list[AuditEvent], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor({"k": _KIND, "t": last.occurred_at.isoformat(), "id": str(last.id)})


@router.get(
    "/admin/audit-events",
    response_model=Page[AuditEventRead],
    responses=problem_responses(*_ERRORS, PermissionDenied),
)
async def list_audit_events(
    _: Annotated[Authorized, require("audit:read")],
    db: DbSession,
    actor_id: uuid.UUID | None = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="Inclusive lower bound.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive upper bound.")] = None,
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
    rows = await AuditRepository(db).list_events(filters, limit=limit, after=_position(cursor))
    return Page(
        items=[AuditEventRead.model_validate(r) for r in rows[:limit]],
        next_cursor=_next(rows, limit),
    )


@router.get(
    "/users/me/security-events",
    response_model=Page[SecurityEventRead],
    responses=problem_responses(*_ERRORS),
    tags=["users"],
)
async def list_my_security_events(
    principal: CurrentPrincipal,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[SecurityEventRead]:
    """The signed-in user's own security events (logins, password and session changes,
    admin actions on the account), newest first."""
    filters = AuditFilter(target_type="user", target_id=str(principal.user_id))
    rows = await AuditRepository(db).list_events(filters, limit=limit, after=_position(cursor))
    items = []
    for r in rows[:limit]:
        by_self = r.actor_id == principal.user_id
        items.append(
            SecurityEventRead(
                id=r.id,
                occurred_at=r.occurred_at,
                action=r.action,
                by_self=by_self,
                ip_address=r.ip_address if by_self else None,
                user_agent=r.user_agent if by_self else None,
                details=r.details,
            )
        )
    return Page(items=items, next_cursor=_next(rows, limit))
