"""HTTP route of the MFA reset: DELETE /api/v1/admin/users/{user_id}/mfa."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from atrium.auth.stepup import StepUpRequired, require_aal2
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.mfa.factors import FactorService
from atrium.rbac.dependencies import Authorized, require
from atrium.rbac.exceptions import EscalationRefused, PermissionDenied
from atrium.rbac.resolver import permission_resolver
from atrium.rbac.service import managed_account
from atrium.users.exceptions import UserNotFound

router = APIRouter(prefix="/admin/users", tags=["admin: users"])

UsersMfaReset = Annotated[Authorized, require("users:mfa_reset")]


@router.delete(
    "/{user_id:uuid}/mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        NotAuthenticated,
        InvalidToken,
        PermissionDenied,
        EscalationRefused,
        StepUpRequired,
        UserNotFound,
        ValidationFailed,
    ),
    dependencies=[Depends(require_aal2)],
)
async def reset_mfa(user_id: uuid.UUID, caller: UsersMfaReset, db: DbSession, ctx: Ctx) -> Response:
    """Remove every second factor of an account (a lost authenticator); needs aal2."""
    # Only an account whose permissions the caller holds (EscalationRefused otherwise).
    await managed_account(db, caller, user_id, await permission_resolver(ctx).graph())
    await FactorService(db, ctx).reset(caller.user_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
