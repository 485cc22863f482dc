"""HTTP routes of API keys: /api/v1/users/me/api-keys* (the owner, signed in with a
session: never with a key) and /api/v1/admin/users/{user_id}/api-keys* (administrators)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from atrium.apikeys.exceptions import (
    ApiKeyLimitReached,
    ApiKeyNotFound,
    ScopeNotHeld,
    UnknownScope,
)
from atrium.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from atrium.apikeys.service import ApiKeyService
from atrium.auth.dependencies import SessionPrincipal
from atrium.auth.exceptions import ApiKeyNotAllowed
from atrium.auth.stepup import StepUpRequired, require_step_up
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.dependencies import Authorized, require
from atrium.rbac.exceptions import EscalationRefused, PermissionDenied
from atrium.users.exceptions import UserNotFound

router = APIRouter(prefix="/users/me/api-keys", tags=["api-keys"])
admin_router = APIRouter(prefix="/admin/users/{user_id}/api-keys", tags=["admin", "api-keys"])

_OWNER_ERRORS = (NotAuthenticated, InvalidToken, ApiKeyNotAllowed)
_ADMIN_ERRORS = (NotAuthenticated, InvalidToken, PermissionDenied, UserNotFound)

UsersRead = Annotated[Authorized, require("users:read")]
SessionsRevoke = Annotated[Authorized, require("sessions:revoke")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(
        *_OWNER_ERRORS,
        StepUpRequired,
        UnknownScope,
        ScopeNotHeld,
        ApiKeyLimitReached,
        ValidationFailed,
    ),
    dependencies=[Depends(require_step_up)],
)
async def create_api_key(
    body: ApiKeyCreate, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> ApiKeyCreated:
    """Create an API key; the answer carries the key, shown this once."""
    return await ApiKeyService(db, ctx).create(principal.user_id, body)


@router.get("", response_model=list[ApiKeyRead], responses=problem_responses(*_OWNER_ERRORS))
async def list_api_keys(principal: SessionPrincipal, db: DbSession, ctx: Ctx) -> list[ApiKeyRead]:
    """The caller's API keys (not revoked), newest first; never the keys themselves."""
    return await ApiKeyService(db, ctx).list_of(principal.user_id)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_OWNER_ERRORS, ApiKeyNotFound, ValidationFailed),
)
async def revoke_api_key(
    key_id: uuid.UUID, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke one of the caller's API keys: every node refuses it from this answer on."""
    await ApiKeyService(db, ctx).revoke(
        principal.user_id, key_id, actor_id=principal.user_id, by_admin=False
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.get(
    "",
    response_model=list[ApiKeyRead],
    responses=problem_responses(*_ADMIN_ERRORS, ValidationFailed),
)
async def admin_list_api_keys(
    user_id: uuid.UUID, caller: UsersRead, db: DbSession, ctx: Ctx
) -> list[ApiKeyRead]:
    """An account's API keys (not revoked), newest first (permission `users:read`)."""
    service = ApiKeyService(db, ctx)
    await service.existing_user(user_id)
    return await service.list_of(user_id)


@admin_router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        *_ADMIN_ERRORS, EscalationRefused, ApiKeyNotFound, ValidationFailed
    ),
)
async def admin_revoke_api_key(
    user_id: uuid.UUID, key_id: uuid.UUID, caller: SessionsRevoke, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke an account's API key (permission `sessions:revoke`); audited."""
    service = ApiKeyService(db, ctx)
    await service.managed_user(caller, user_id)
    await service.revoke(user_id, key_id, actor_id=caller.user_id, by_admin=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
