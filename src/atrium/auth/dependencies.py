"""FastAPI dependencies for authentication.

``CurrentPrincipal`` is the caller behind a valid bearer access token or API key
(``atr_pat_...``); a route that declares it answers 401 ``not_authenticated`` without a
token and 401 ``invalid_token`` for a bad, expired or revoked one. ``SessionPrincipal``
is the same caller, refused with 403 ``api_key_not_allowed`` when the credential is an API
key: for sensitive operations and the management of keys.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from atrium.auth.api_keys import api_key_resolver
from atrium.auth.exceptions import ApiKeyNotAllowed, MfaEnrollmentRequired
from atrium.auth.principal import Principal as Principal
from atrium.auth.principal import principal_store
from atrium.config import UnverifiedAction
from atrium.context import AppContext, Ctx
from atrium.core.apikeys import looks_like_api_key
from atrium.core.client import client_from_scope
from atrium.core.tokens import TokenError
from atrium.errors import InvalidToken, NotAuthenticated
from atrium.verification.exceptions import EmailNotVerified

log = structlog.get_logger(__name__)

# What a token past its MFA enrolment deadline still reaches: the account itself, the MFA
# routes (enrolment), step-up (enrolling needs a recent authentication) and logout.
ENROLMENT_ROUTES = re.compile(r"/api/v1/(?:users/me(?:/mfa(?:/[^/]+)*)?|auth/(?:logout|step-up))")


class BearerPrincipal(OAuth2PasswordBearer):
    """The OAuth2 bearer scheme (for OpenAPI and Swagger UI's Authorize button) that also
    resolves the principal, in one dependency: this runs on every authenticated request,
    and each level of dependency resolution costs."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        """Verify the bearer access token (or API key) and resolve its principal (cached;
        see principal.py and api_keys.py).

        Raises:
            NotAuthenticated: 401, no bearer token.
            InvalidToken: 401, the token is invalid, expired or its session revoked; the
                API key is malformed, unknown, revoked or expired, or its owner suspended.
            MfaEnrollmentRequired: 403, the token is past its ``mfa_enrol_by`` (a role of
                the account requires MFA, the grace period is over and the account has no
                factor) and the route is not one of :data:`ENROLMENT_ROUTES`.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("A bearer access token is required.")
        ctx: AppContext = request.app.state.ctx
        now = ctx.clock.now()
        if looks_like_api_key(token):
            ip_address = client_from_scope(request.scope).ip_address
            resolver = api_key_resolver(request.app.state, ctx)
            principal = await resolver.resolve(token, now, ip_address)
            request.state.principal = principal
            return principal
        try:
            claims = ctx.tokens.verify(token, now=now)
        except TokenError as exc:
            log.info("access_token_rejected", reason=str(exc))
            raise InvalidToken("The access token is invalid or expired.") from exc
        if (
            claims.mfa_enrol_by is not None
            and now.timestamp() >= claims.mfa_enrol_by
            and not ENROLMENT_ROUTES.fullmatch(request.scope["path"])
        ):
            raise MfaEnrollmentRequired("A role of your account requires a second factor.")
        principal = await principal_store(ctx).resolve(claims, now)
        request.state.principal = principal
        return principal


# auto_error=False: missing credentials are rendered as problem+json by us.
current_principal = BearerPrincipal(
    tokenUrl="/api/v1/auth/login", scheme_name="OAuth2PasswordBearer", auto_error=False
)

CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class OptionalBearerPrincipal(BearerPrincipal):
    """The caller when a bearer token is sent (401 if it is bad), None for anonymous calls."""

    async def __call__(self, request: Request) -> Principal | None:  # type: ignore[override]
        if not request.headers.get("authorization"):
            return None
        return await super().__call__(request)


optional_principal = OptionalBearerPrincipal(
    tokenUrl="/api/v1/auth/login", scheme_name="OAuth2PasswordBearer", auto_error=False
)

OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
"""For public routes whose answer depends on who asks (public profiles)."""


async def session_principal(principal: CurrentPrincipal) -> Principal:
    """The caller, signed in with a session's access token (not an API key).

    Raises:
        ApiKeyNotAllowed: 403 ``api_key_not_allowed``, the credential is an API key.
    """
    if principal.api_key_id is not None:
        raise ApiKeyNotAllowed("This operation needs a signed-in session, not an API key.")
    return principal


SessionPrincipal = Annotated[Principal, Depends(session_principal)]
"""For sensitive operations and the management of API keys: never reached with a key."""


# --- what an account with an unverified email may do ------------------------------------
# ``VerifiedUser`` answers 403 ``email_not_verified`` unless the caller's email is verified.
# ``unverified_may(action)`` lets an unverified account through only when ``action`` is in
# ``auth.unverified_allowed_actions`` (a setting), so operators choose what unverified
# accounts can do with their own account.


async def verified_user(principal: CurrentPrincipal) -> Principal:
    """The caller, whose email must be verified.

    Raises:
        EmailNotVerified: 403 ``email_not_verified``.
    """
    if not principal.user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    return principal


VerifiedUser = Annotated[Principal, Depends(verified_user)]


def unverified_may(action: UnverifiedAction) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, verified or allowed ``action`` while unverified.

    Raises:
        EmailNotVerified: 403, unverified and ``action`` is not in
            ``auth.unverified_allowed_actions``.
    """

    async def dependency(principal: CurrentPrincipal, ctx: Ctx) -> Principal:
        if principal.user.email_verified or action in ctx.settings.auth.unverified_allowed_actions:
            return principal
        raise EmailNotVerified(f"Verify your email address first ({action}).")

    return dependency
