"""Public HTTP routes of the account email flows: /api/v1/auth/{verify-email,password,
email-change} (the signed-in ones are in :mod:`atrium.account.email_router`)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response, status

from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited
from atrium.errors import ValidationFailed, problem_responses
from atrium.users.exceptions import EmailTaken, WeakPassword
from atrium.verification.exceptions import InvalidEmailToken
from atrium.verification.schemas import (
    Accepted,
    PasswordForgotRequest,
    PasswordResetRequest,
    TokenRequest,
)
from atrium.verification.service import (
    AccountEmailService,
    limit_forgot_password,
    send_password_reset,
)

router = APIRouter(prefix="/auth", tags=["auth"])


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
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(RateLimited, ValidationFailed),
)
async def forgot_password(
    body: PasswordForgotRequest, background: BackgroundTasks, ctx: Ctx
) -> Accepted:
    """Email a password reset link, if an account has this address (public; same answer
    either way)."""
    await limit_forgot_password(ctx, body.email)
    # Everything that depends on the account runs after the answer is sent.
    background.add_task(send_password_reset, ctx, body.email)
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
