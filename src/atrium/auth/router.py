"""HTTP routes of authentication: /api/v1/auth/* and /.well-known/jwks.json."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Form, Request, Response, status
from fastapi.responses import JSONResponse

from atrium.auth.dependencies import SessionPrincipal
from atrium.auth.exceptions import (
    AccountSuspended,
    ApiKeyNotAllowed,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidRefreshToken,
    LoginThrottled,
    MfaRequired,
    RefreshTokenReused,
    WeakPassword,
)
from atrium.auth.principal import user_read
from atrium.auth.schemas import (
    MFA_REQUIRED_RESPONSE,
    JWKSet,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
)
from atrium.auth.service import AuthService, ClientInfo
from atrium.context import Ctx
from atrium.core.client import client_from_scope
from atrium.core.db import DbSession
from atrium.core.examples import EXAMPLE_EMAIL, EXAMPLE_PASSWORD
from atrium.core.ratelimit import RateLimited, rate_limit
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.models.role import USER
from atrium.users.schemas import UserRead
from atrium.verification.deletion import DeletionPending
from atrium.verification.schemas import Accepted

REGISTRATION_ACCEPTED = "Check your inbox to continue."

router = APIRouter(prefix="/auth", tags=["auth"])
well_known_router = APIRouter(tags=["auth"])


def client_info(request: Request) -> ClientInfo:
    return client_from_scope(request.scope)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses={
        202: {
            "model": Accepted,
            "description": "With `auth.enumeration_safe_registration`: the same answer for "
            "a new and an already registered email.",
        },
        **problem_responses(EmailTaken, InvalidEmail, WeakPassword, ValidationFailed, RateLimited),
    },
    dependencies=[Depends(rate_limit("register"))],
)
async def register(body: RegisterRequest, db: DbSession, ctx: Ctx) -> UserRead | JSONResponse:
    """Register a new account; a verification email is queued (public)."""
    user = await AuthService(db, ctx).sign_up(body.email, body.password, locale=body.locale)
    if user is None:
        return JSONResponse(
            Accepted(detail=REGISTRATION_ACCEPTED).model_dump(),
            status_code=status.HTTP_202_ACCEPTED,
        )
    return user_read(user, [USER])


@router.post(
    "/login",
    response_model=TokenResponse,
    responses={
        **problem_responses(
            InvalidCredentials,
            MfaRequired,
            AccountSuspended,
            DeletionPending,
            ValidationFailed,
            RateLimited,
            LoginThrottled,
        ),
        401: MFA_REQUIRED_RESPONSE,
    },
    dependencies=[Depends(rate_limit("login"))],
)
async def login(
    request: Request,
    username: Annotated[
        str, Form(max_length=320, description="The account's email.", examples=[EXAMPLE_EMAIL])
    ],
    password: Annotated[str, Form(max_length=1024, examples=[EXAMPLE_PASSWORD])],
    db: DbSession,
    ctx: Ctx,
    device_token: Annotated[
        str | None,
        Form(
            max_length=128,
            description="The `device_token` of a trusted device: the second factor is skipped.",
        ),
    ] = None,
) -> TokenResponse:
    """Log in with the OAuth2 password flow: email as `username` (public)."""
    return await AuthService(db, ctx).login(username, password, client_info(request), device_token)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    responses=problem_responses(
        InvalidRefreshToken, RefreshTokenReused, ValidationFailed, RateLimited
    ),
    dependencies=[Depends(rate_limit("refresh"))],
)
async def refresh(body: RefreshRequest, db: DbSession, ctx: Ctx) -> TokenResponse:
    """Exchange a refresh token for a new pair; the old one stops working (public)."""
    return await AuthService(db, ctx).refresh(body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, InvalidToken, ApiKeyNotAllowed, ValidationFailed),
)
async def logout(
    principal: SessionPrincipal,
    db: DbSession,
    ctx: Ctx,
    body: Annotated[LogoutRequest | None, Body()] = None,
) -> Response:
    """End the current session: its refresh and access tokens stop working at once."""
    await AuthService(db, ctx).logout(principal, body.refresh_token if body else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@well_known_router.get("/.well-known/jwks.json", response_model=JWKSet)
async def jwks(ctx: Ctx, response: Response) -> JWKSet:
    """The public keys that sign access tokens, as a JWK Set (public)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return JWKSet(keys=ctx.tokens.jwks()["keys"])
