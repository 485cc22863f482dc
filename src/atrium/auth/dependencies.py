"""FastAPI dependencies for authentication.

``CurrentPrincipal`` is the caller behind a valid bearer access token; a route that
declares it answers 401 ``not_authenticated`` without a token and 401 ``invalid_token``
for a bad, expired or revoked one.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.core.tokens import TokenError
from atrium.errors import InvalidToken, NotAuthenticated

log = structlog.get_logger(__name__)


class BearerPrincipal(OAuth2PasswordBearer):
    """The OAuth2 bearer scheme (for OpenAPI and Swagger UI's Authorize button) that also
    resolves the principal, in one dependency: this runs on every authenticated request,
    and each level of dependency resolution costs."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        """Verify the bearer access token and resolve its principal (cached; see
        principal.py).

        Raises:
            NotAuthenticated: 401, no bearer token.
            InvalidToken: 401, the token is invalid, expired or its session revoked.
        """
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("A bearer access token is required.")
        ctx: AppContext = request.app.state.ctx
        now = ctx.clock.now()
        try:
            claims = ctx.tokens.verify(token.strip(), now=now)
        except TokenError as exc:
            log.info("access_token_rejected", reason=str(exc))
            raise InvalidToken("The access token is invalid or expired.") from exc
        principal = await ctx.principals.resolve(claims, now)
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
