"""HTTP routes of social login: /api/v1/auth/oauth/*.

The browser flow: ``authorize`` (302 to the provider, binding cookie set), ``callback``
(the provider's redirect; 303 to where the flow goes), and ``exchange`` for single-page
and mobile apps that received a ``login_code``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import RedirectResponse

from atrium.auth.exceptions import AccountSuspended, EmailTaken, InvalidCredentials
from atrium.auth.schemas import TokenResponse
from atrium.context import Ctx
from atrium.core.client import client_from_scope
from atrium.core.cookies import (
    MFA_PENDING_COOKIE,
    session_cookie_name,
    set_cookie,
    set_session_cookie,
)
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited, rate_limit
from atrium.errors import ValidationFailed, problem_responses
from atrium.social.exceptions import (
    AuthorizationDenied,
    IdentityLinkedElsewhere,
    InvalidIdToken,
    InvalidLoginCode,
    InvalidOAuthState,
    InvalidRedirect,
    IssuerMismatch,
    ProviderEmailMissing,
    ProviderNotFound,
    ProviderUnavailable,
)
from atrium.social.flow import STATE_TTL_SECONDS
from atrium.social.providers import enabled_providers, get_provider
from atrium.social.schemas import ExchangeRequest, ProviderPublic
from atrium.social.service import BINDING_COOKIE, LINK_COOKIE, SocialService, binding_of

router = APIRouter(prefix="/auth/oauth", tags=["auth: social login"])

ProviderPath = Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
_REDIRECT = {"description": "Redirect to the provider (authorize) or onwards (callback)."}


@router.get(
    "/providers",
    response_model=list[ProviderPublic],
    responses=problem_responses(ValidationFailed),
)
async def list_providers(db: DbSession, ctx: Ctx) -> list[ProviderPublic]:
    """The identity providers offered for sign-in (public)."""
    return [
        ProviderPublic(
            id=p.id,
            display_name=p.display_name,
            kind=p.kind,
            authorize_url=f"/api/v1/auth/oauth/{p.id}/authorize",
        )
        for p in await enabled_providers(db, ctx.settings)
    ]


@router.get(
    "/{provider}/authorize",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={
        302: _REDIRECT,
        **problem_responses(
            ProviderNotFound, InvalidRedirect, ValidationFailed, ProviderUnavailable
        ),
    },
)
async def authorize(
    request: Request,
    provider: ProviderPath,
    db: DbSession,
    ctx: Ctx,
    redirect_to: Annotated[
        str | None,
        Query(
            max_length=2048,
            description="A path of Atrium's own (signs the browser in to the hosted pages), "
            "or one of `social.app_redirect_uris` (receives a `login_code`).",
        ),
    ] = None,
    code_challenge: Annotated[
        str | None,
        Query(min_length=43, max_length=128, description="PKCE S256 challenge of an app."),
    ] = None,
    code_challenge_method: Annotated[str | None, Query(pattern="^S256$")] = None,
) -> RedirectResponse:
    """Start signing in with a provider: 302 to its authorization endpoint (public)."""
    found = await get_provider(db, ctx.settings, provider)
    binding = binding_of(request)
    url = await SocialService(db, ctx).begin(
        found, redirect_to, code_challenge, link_user_id=None, binding=binding
    )
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    set_cookie(request, response, BINDING_COOKIE, binding, STATE_TTL_SECONDS)
    return response


@router.get(
    "/{provider}/callback",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses={
        303: _REDIRECT,
        **problem_responses(
            InvalidOAuthState,
            IssuerMismatch,
            AuthorizationDenied,
            InvalidIdToken,
            ProviderEmailMissing,
            IdentityLinkedElsewhere,
            AccountSuspended,
            EmailTaken,
            ProviderNotFound,
            ValidationFailed,
            ProviderUnavailable,
        ),
    },
)
async def callback(
    request: Request, provider: ProviderPath, db: DbSession, ctx: Ctx
) -> RedirectResponse:
    """The provider's redirect back with the authorization response (public).

    An account with MFA continues at `/login/mfa` (hosted pages) or gets `mfa_required`
    when its app exchanges the `login_code`."""
    params = {k: v[:2048] for k, v in request.query_params.items()}
    previous = request.cookies.get(session_cookie_name(request))
    result = await SocialService(db, ctx).callback(
        provider,
        params,
        binding_of(request, create=False),
        client_from_scope(request.scope),
        replaced_session=previous if previous and len(previous) <= 128 else None,
    )
    response = RedirectResponse(result.location, status_code=status.HTTP_303_SEE_OTHER)
    if result.session_token is not None:
        set_session_cookie(
            request,
            response,
            result.session_token,
            ctx.settings.auth.refresh_token_absolute_ttl_seconds,
        )
    if result.link_ticket is not None:
        set_cookie(request, response, LINK_COOKIE, result.link_ticket, STATE_TTL_SECONDS)
    if result.mfa_token is not None:
        set_cookie(request, response, MFA_PENDING_COOKIE, result.mfa_token, result.mfa_token_ttl)
    return response


@router.post(
    "/exchange",
    response_model=TokenResponse,
    responses=problem_responses(
        InvalidLoginCode, AccountSuspended, InvalidCredentials, ValidationFailed, RateLimited
    ),
    dependencies=[Depends(rate_limit("login"))],
)
async def exchange(
    body: ExchangeRequest, request: Request, db: DbSession, ctx: Ctx
) -> TokenResponse:
    """Exchange a single-use `login_code` and its PKCE verifier for tokens (public)."""
    return await SocialService(db, ctx).exchange(
        body.login_code, body.code_verifier, client_from_scope(request.scope)
    )
