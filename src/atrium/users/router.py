"""HTTP routes of the signed-in user's own account: /api/v1/users/me*."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response, status

from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.exceptions import IncorrectPassword, SessionNotFound, WeakPassword
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.users.schemas import (
    AccountDeletion,
    PasswordChange,
    SessionRead,
    UserRead,
    UserUpdate,
)
from atrium.users.service import UserService
from atrium.verification.dependencies import unverified_may
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(prefix="/users/me", tags=["users"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)
_GATED_ERRORS = (NotAuthenticated, InvalidToken, EmailNotVerified)


@router.get("", response_model=UserRead, responses=problem_responses(*_AUTH_ERRORS))
async def read_me(principal: CurrentPrincipal) -> Response:
    """The signed-in user's account."""
    # The cached snapshot is already this route's JSON (UserRead): send it as it is.
    return Response(content=principal.user_json, media_type="application/json")


@router.patch(
    "",
    response_model=UserRead,
    responses=problem_responses(*_GATED_ERRORS, ValidationFailed),
    dependencies=[Depends(unverified_may("account:update"))],
)
async def update_me(
    body: UserUpdate, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> UserRead:
    """Change the signed-in user's account fields (`full_name`)."""
    return await UserService(db, ctx).update(principal, body.model_dump(exclude_unset=True))


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH_ERRORS, IncorrectPassword, ValidationFailed),
)
async def delete_me(
    body: AccountDeletion, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Delete the signed-in user's account and all its sessions; requires the password."""
    await UserService(db, ctx).delete_account(principal, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_GATED_ERRORS, IncorrectPassword, WeakPassword, ValidationFailed),
    dependencies=[Depends(unverified_may("password:change"))],
)
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Change the password; every other session of the account is revoked."""
    await UserService(db, ctx).change_password(principal, body.current_password, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/sessions",
    response_model=list[SessionRead],
    responses=problem_responses(*_GATED_ERRORS),
    dependencies=[Depends(unverified_may("sessions:read"))],
)
async def list_sessions(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> list[SessionRead]:
    """The signed-in user's live sessions, newest first; `current` marks this one."""
    return await UserService(db, ctx).list_sessions(principal)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_GATED_ERRORS, SessionNotFound, ValidationFailed),
    dependencies=[Depends(unverified_may("sessions:revoke"))],
)
async def revoke_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke one of the signed-in user's sessions (log out that device)."""
    await UserService(db, ctx).revoke_session(principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
