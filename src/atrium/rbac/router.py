"""HTTP routes of roles: /api/v1/admin/roles*, /api/v1/admin/users/{id}/roles/{name}."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from atrium.auth.stepup import StepUpRequired, require_step_up
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.dependencies import RolesAssign, RolesManage, RolesRead
from atrium.rbac.exceptions import (
    BuiltinRoleProtected,
    EscalationRefused,
    LastSuperadmin,
    PermissionDenied,
    RoleCycle,
    RoleExists,
    RoleNotFound,
    UnknownPermission,
)
from atrium.rbac.schemas import RoleCreate, RoleRead, RoleUpdate
from atrium.rbac.service import RoleService
from atrium.users.exceptions import UserNotFound

router = APIRouter(prefix="/admin", tags=["admin: roles"])

_AUTH = (NotAuthenticated, InvalidToken, PermissionDenied)
RoleName = Annotated[str, Path(max_length=64)]


@router.get("/roles", response_model=list[RoleRead], responses=problem_responses(*_AUTH))
async def list_roles(_: RolesRead, db: DbSession, ctx: Ctx) -> list[RoleRead]:
    """Every role with its permissions, parents and effective permissions."""
    return await RoleService(db, ctx).list_roles()


@router.post(
    "/roles",
    status_code=status.HTTP_201_CREATED,
    response_model=RoleRead,
    responses=problem_responses(
        *_AUTH,
        EscalationRefused,
        RoleExists,
        RoleNotFound,
        RoleCycle,
        UnknownPermission,
        ValidationFailed,
    ),
)
async def create_role(
    body: RoleCreate,
    caller: RolesManage,
    db: DbSession,
    ctx: Ctx,
) -> RoleRead:
    """Create a role (only with permissions the caller holds)."""
    return await RoleService(db, ctx).create(caller, body)


@router.get(
    "/roles/{name}", response_model=RoleRead, responses=problem_responses(*_AUTH, RoleNotFound)
)
async def get_role(name: RoleName, _: RolesRead, db: DbSession, ctx: Ctx) -> RoleRead:
    """One role."""
    return await RoleService(db, ctx).get(name)


@router.patch(
    "/roles/{name}",
    response_model=RoleRead,
    responses=problem_responses(
        *_AUTH,
        EscalationRefused,
        RoleNotFound,
        RoleCycle,
        UnknownPermission,
        BuiltinRoleProtected,
        ValidationFailed,
    ),
)
async def update_role(
    name: RoleName,
    body: RoleUpdate,
    caller: RolesManage,
    db: DbSession,
    ctx: Ctx,
) -> RoleRead:
    """Change a role's description, permissions or parents; takes effect at once."""
    return await RoleService(db, ctx).update(caller, name, body)


@router.delete(
    "/roles/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, EscalationRefused, RoleNotFound, BuiltinRoleProtected),
)
async def delete_role(
    name: RoleName,
    caller: RolesManage,
    db: DbSession,
    ctx: Ctx,
) -> Response:
    """Delete a custom role (built-in roles cannot be deleted)."""
    await RoleService(db, ctx).delete(caller, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/users/{user_id}/roles/{name}",
    response_model=list[str],
    responses=problem_responses(
        *_AUTH, StepUpRequired, EscalationRefused, UserNotFound, RoleNotFound
    ),
    dependencies=[Depends(require_step_up)],
)
async def grant_role(
    user_id: uuid.UUID,
    name: RoleName,
    caller: RolesAssign,
    db: DbSession,
    ctx: Ctx,
) -> list[str]:
    """Give a role to a user (idempotent); answers the user's roles."""
    return await RoleService(db, ctx).grant(caller, user_id, name)


@router.delete(
    "/users/{user_id}/roles/{name}",
    response_model=list[str],
    responses=problem_responses(
        *_AUTH, StepUpRequired, EscalationRefused, UserNotFound, RoleNotFound, LastSuperadmin
    ),
    dependencies=[Depends(require_step_up)],
)
async def revoke_role(
    user_id: uuid.UUID,
    name: RoleName,
    caller: RolesAssign,
    db: DbSession,
    ctx: Ctx,
) -> list[str]:
    """Take a role from a user (idempotent); answers the user's roles."""
    return await RoleService(db, ctx).revoke(caller, user_id, name)
