"""HTTP routes of the email flows that need a signed-in caller:
/api/v1/auth/verify-email/resend and /api/v1/users/me/email."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from atrium.auth.dependencies import CurrentPrincipal, SessionPrincipal
from atrium.auth.exceptions import ApiKeyNotAllowed
from atrium.auth.stepup import StepUpRequired, require_step_up
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.users.exceptions import EmailTaken, IncorrectPassword, InvalidEmail
from atrium.verification.exceptions import EmailUnchanged
from atrium.verification.schemas import Accepted, EmailChangeRequest
from atrium.verification.service import AccountEmailService

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(prefix="/users/me", tags=["users"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(*_AUTH_ERRORS, RateLimited),
)
async def resend_verification(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> Accepted:
    """Send a new verification link to the signed-in user's address (rate-limited)."""
    await AccountEmailService(db, ctx).resend_verification(principal.user_id)
    return Accepted(detail="If the address is not verified yet, a new link is on its way.")


@me_router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(
        *_AUTH_ERRORS,
        ApiKeyNotAllowed,
        StepUpRequired,
        IncorrectPassword,
        InvalidEmail,
        EmailUnchanged,
        EmailTaken,
        ValidationFailed,
    ),
    dependencies=[Depends(require_step_up)],
)
async def request_email_change(
    body: EmailChangeRequest, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> Accepted:
    """Ask to change the email; it changes when the link sent to the new address is used."""
    await AccountEmailService(db, ctx).request_email_change(
        principal.user_id, body.new_email, body.password
    )
    return Accepted(detail="A confirmation link is on its way to the new address.")
