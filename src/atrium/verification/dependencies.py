"""Dependencies that limit what an account with an unverified email may do.

``VerifiedUser`` answers 403 ``email_not_verified`` unless the caller's email is verified.
``unverified_may(action)`` lets an unverified account through only when ``action`` is in
``auth.unverified_allowed_actions`` (a setting), so operators choose what unverified
accounts can do with their own account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.principal import Principal
from atrium.context import Ctx
from atrium.verification.exceptions import EmailNotVerified


async def verified_user(principal: CurrentPrincipal) -> Principal:
    """The caller, whose email must be verified.

    Raises:
        EmailNotVerified: 403 ``email_not_verified``.
    """
    if not principal.user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    return principal


VerifiedUser = Annotated[Principal, Depends(verified_user)]


def unverified_may(action: str) -> Callable[..., Awaitable[Principal]]:
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
