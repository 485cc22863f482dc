"""HTTP routes of the account email flows: /api/v1/auth/{verify-email,password,email-change}
and /api/v1/users/me/email."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.exceptions import EmailTaken, IncorrectPassword, InvalidEmail, WeakPassword
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.verification.exceptions import EmailUnchanged, InvalidEmailToken
from atrium.verification.schemas import (
    Accepted,
    EmailChangeRequest,
    PasswordForgotRequest,
    PasswordResetRequest,
    TokenRequest,
)
from atrium.verification.service import AccountEmailService

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(prefix="/users/me", tags=["users"])

_AUTH_ERRORS = (NotAuthenticated, InvalidToken)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidEmailToken, ValidationFailed),
)
async def verify_email(body: TokenRequest, db: DbSession, ctx: Ctx) -> Response:
    """Verify the account's email with the token from the emailed link (public)."""
    await AccountEmailService(db, ctx).verify_email(body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(*_AUTH_ERRORS, RateLimited),
)
async def resend_verification(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> Accepted:
    """Send a new verification link to the signed-in user's address (rate-limited)."""
    await AccountEmailService(db, ctx).resend_verification(principal)
    return Accepted(detail="If the address is not verified yet, a new link is on its way.")


@router.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(RateLimited, ValidationFailed),
)
async def forgot_password(body: PasswordForgotRequest, db: DbSession, ctx: Ctx) -> Accepted:
    """Email a password reset link, if an account has this address (public; same answer
    either way)."""
    await AccountEmailService(db, ctx).forgot_password(body.email)
    return Accepted(detail="If an account has this address, a reset link is on its way.")


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidEmailToken, WeakPassword, ValidationFailed),
)
async def reset_password(body: PasswordResetRequest, db: DbSession, ctx: Ctx) -> Response:
    """Set a new password with a reset token; every session is revoked (public)."""
    await AccountEmailService(db, ctx).reset_password(body.token, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/email-change/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidEmailToken, EmailTaken, ValidationFailed),
)
async def confirm_email_change(body: TokenRequest, db: DbSession, ctx: Ctx) -> Response:
    """Apply an email change with the token sent to the new address (public)."""
    await AccountEmailService(db, ctx).confirm_email_change(body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(
        *_AUTH_ERRORS, IncorrectPassword, InvalidEmail, EmailUnchanged, EmailTaken, ValidationFailed
    ),
)
async def request_email_change(
    body: EmailChangeRequest, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Accepted:
    """Ask to change the email; it changes when the link sent to the new address is used."""
    await AccountEmailService(db, ctx).request_email_change(
        principal, body.new_email, body.password
    )
    return Accepted(detail="A confirmation link is on its way to the new address.")
