"""HTTP routes of authentication with a second factor: /api/v1/auth/step-up,
/api/v1/auth/mfa/verify."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from atrium.auth.dependencies import SessionPrincipal
from atrium.auth.exceptions import ApiKeyNotAllowed, LoginThrottled
from atrium.auth.schemas import TokenResponse
from atrium.context import Ctx
from atrium.core.client import client_from_scope
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited, rate_limit
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.mfa.exceptions import InvalidMfaToken, InvalidOtp, StepUpFailed, UnsupportedMethod
from atrium.mfa.login import MfaLoginService
from atrium.mfa.schemas import MfaTokenResponse, MfaVerifyRequest, StepUpRequest
from atrium.mfa.stepup import StepUpService

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/step-up",
    response_model=TokenResponse,
    responses=problem_responses(
        NotAuthenticated,
        InvalidToken,
        ApiKeyNotAllowed,
        StepUpFailed,
        InvalidOtp,
        UnsupportedMethod,
        ValidationFailed,
        RateLimited,
        LoginThrottled,
    ),
    dependencies=[Depends(rate_limit("login"))],
)
async def step_up(
    body: StepUpRequest, principal: SessionPrincipal, request: Request, db: DbSession, ctx: Ctx
) -> TokenResponse:
    """Authenticate again (password, TOTP or recovery code): a fresh pair for this session."""
    return await StepUpService(db, ctx).step_up(principal, body, client_from_scope(request.scope))


@router.post(
    "/mfa/verify",
    response_model=MfaTokenResponse,
    responses=problem_responses(
        InvalidMfaToken,
        InvalidOtp,
        UnsupportedMethod,
        ValidationFailed,
        RateLimited,
        LoginThrottled,
    ),
    dependencies=[Depends(rate_limit("login"))],
)
async def verify_mfa(
    body: MfaVerifyRequest, request: Request, db: DbSession, ctx: Ctx
) -> MfaTokenResponse:
    """Finish a login with a second factor: the token pair at aal2 (public)."""
    return await MfaLoginService(db, ctx).verify(body, client_from_scope(request.scope))
