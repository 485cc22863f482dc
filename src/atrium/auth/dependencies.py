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

# auto_error=False: missing credentials are rendered as problem+json by us.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


async def current_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """Verify the bearer access token and resolve its principal (cached; see principal.py)."""
    # The context is read from the app directly rather than through the Ctx dependency:
    # this runs on every authenticated request, and each dependency level costs.
    ctx: AppContext = request.app.state.ctx
    if not token:
        raise NotAuthenticated("A bearer access token is required.")
    now = ctx.clock.now()
    try:
        claims = ctx.tokens.verify(token, now=now)
    except TokenError as exc:
        log.info("access_token_rejected", reason=str(exc))
        raise InvalidToken("The access token is invalid or expired.") from exc
    principal = await ctx.principals.resolve(claims, now)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
