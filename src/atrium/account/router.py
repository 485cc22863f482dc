"""HTTP routes of the signed-in user's own account: /api/v1/users/me*."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response, status

from atrium.account.service import AccountService
from atrium.auth.dependencies import CurrentPrincipal, SessionPrincipal, unverified_may
from atrium.auth.exceptions import (
    ApiKeyNotAllowed,
    IncorrectPassword,
    SessionNotFound,
    WeakPassword,
)
from atrium.auth.stepup import StepUpRequired, require_step_up
from atrium.config import UnverifiedAction
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.users.schemas import (
    AccountDeletion,
    DeletionScheduled,
    PasswordChange,
    SessionRead,
    UserRead,
    UserUpdate,
)
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(prefix="/users/me", tags=["users"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)
_GATED_ERRORS = (NotAuthenticated, InvalidToken, EmailNotVerified)
# Sensitive operations and the sessions answer 403 api_key_not_allowed to an API key.
_SESSION_ERRORS = (*_GATED_ERRORS, ApiKeyNotAllowed)


@router.get("", response_model=UserRead, responses=problem_responses(*_AUTH_ERRORS))
async def read_me(principal: CurrentPrincipal) -> Response:
    """The signed-in user's account."""
    # The cached snapshot is already this route's JSON (UserRead): send it as it is.
    return Response(content=principal.user_json, media_type="application/json")


@router.patch(
    "",
    response_model=UserRead,
    responses=problem_responses(*_GATED_ERRORS, ValidationFailed),
    dependencies=[Depends(unverified_may(UnverifiedAction.update_own_account))],
)
async def update_me(
    body: UserUpdate, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> UserRead:
    """Change the signed-in user's account fields (`full_name`)."""
    return await AccountService(db, ctx).update(principal, body.model_dump(exclude_unset=True))


@router.delete(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeletionScheduled,
    responses=problem_responses(
        *_AUTH_ERRORS, ApiKeyNotAllowed, StepUpRequired, IncorrectPassword, ValidationFailed
    ),
    dependencies=[Depends(require_step_up)],
)
async def delete_me(
    body: AccountDeletion, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> DeletionScheduled:
    """Delete your account after the grace period (30 days by default); every session and
    API key ends now, and an emailed link cancels it. Requires the password."""
    due = await AccountService(db, ctx).delete_account(principal, body.password)
    return DeletionScheduled(deletion_due_at=due)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        *_SESSION_ERRORS, StepUpRequired, IncorrectPassword, WeakPassword, ValidationFailed
    ),
    dependencies=[
        Depends(unverified_may(UnverifiedAction.change_own_password)),
        Depends(require_step_up),
    ],
)
async def change_password(
    body: PasswordChange, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Change the password; every other session of the account is revoked."""
    await AccountService(db, ctx).change_password(
        principal, body.current_password, body.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/sessions",
    response_model=list[SessionRead],
    responses=problem_responses(*_SESSION_ERRORS),
    dependencies=[Depends(unverified_may(UnverifiedAction.read_own_sessions))],
)
async def list_sessions(principal: SessionPrincipal, db: DbSession, ctx: Ctx) -> list[SessionRead]:
    """The signed-in user's live sessions, newest first; `current` marks this one."""
    return await AccountService(db, ctx).list_sessions(principal)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_SESSION_ERRORS, SessionNotFound, ValidationFailed),
    dependencies=[Depends(unverified_may(UnverifiedAction.revoke_own_sessions))],
)
async def revoke_session(
    session_id: uuid.UUID, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke one of the signed-in user's sessions (log out that device)."""
    await AccountService(db, ctx).revoke_session(principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
