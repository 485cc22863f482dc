"""HTTP route of the signed-in user's own security events: /api/v1/users/me/security-events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from atrium.audit import service
from atrium.audit.schemas import SecurityEventRead
from atrium.auth.dependencies import CurrentPrincipal
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses

router = APIRouter(tags=["audit"])

_ERRORS = (NotAuthenticated, InvalidToken, InvalidCursor, ValidationFailed)


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
    return await service.list_security_events(db, principal.user_id, limit=limit, cursor=cursor)
