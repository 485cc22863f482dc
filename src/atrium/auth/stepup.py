"""Step-up authentication for sensitive operations (RFC 9470).

``StepUp`` (``Annotated[Principal, Depends(require_step_up)]``) lets a caller through
only when the session's ``auth_time`` is at most ``auth.step_up_max_age_seconds`` old
and, when the account has MFA (a verified second factor), the session is at ``aal2``.
Otherwise it answers 401 problem+json ``step_up_required`` with (one line)::

    WWW-Authenticate: Bearer error="insufficient_user_authentication",
        max_age=600, acr_values="aal2"

(``acr_values`` is the level this account needs: ``aal2`` with MFA, ``aal1`` without).
The client then calls ``POST /api/v1/auth/step-up`` with the password or a second
factor and retries with the fresh access token.

Routes that use it: password change, email change, account deletion, MFA changes, role
grants and revocations. Other domains (API keys, passkeys) declare it the same way::

    @router.post("/users/me/api-keys")
    async def create_key(principal: StepUp, ...) -> ...
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from atrium.auth.assurance import has_second_factor
from atrium.auth.dependencies import SessionPrincipal
from atrium.auth.principal import Principal
from atrium.context import Ctx
from atrium.errors import AppError


class StepUpRequired(AppError):
    """The operation needs a more recent or a stronger authentication (RFC 9470 §3)."""

    status = 401
    code = "step_up_required"
    title = "A recent, stronger authentication is required"

    def __init__(self, max_age: int, acr: str) -> None:
        super().__init__(
            f"Authenticate again (POST /api/v1/auth/step-up) at {acr}; this operation "
            f"needs an authentication at most {max_age} seconds old.",
            headers={
                "WWW-Authenticate": (
                    'Bearer error="insufficient_user_authentication", '
                    f'max_age={max_age}, acr_values="{acr}"'
                )
            },
            extensions={"max_age": max_age, "acr_values": acr},
        )


async def require_step_up(principal: SessionPrincipal, ctx: Ctx) -> Principal:
    """The caller, recently and strongly enough authenticated.

    One query (does the account have MFA) when the session is below aal2, in a short
    session of its own: on SQLite the request's transaction takes the write lock, and the
    route may next resolve the caller's permissions through another connection.

    Raises:
        ApiKeyNotAllowed: 403, the caller uses an API key (it cannot step up).
        StepUpRequired: 401, ``auth_time`` older than ``auth.step_up_max_age_seconds``,
            or the account has MFA and the session is at aal1.
    """
    max_age = ctx.settings.auth.step_up_max_age_seconds
    assurance = principal.assurance
    needs_aal2 = assurance.aal >= 2
    if not needs_aal2:
        async with ctx.sessionmaker() as db:
            needs_aal2 = await has_second_factor(db, principal.user_id)
    acr = "aal2" if needs_aal2 else "aal1"
    age = ctx.clock.now().timestamp() - assurance.auth_time
    if age > max_age or (needs_aal2 and assurance.aal < 2):
        raise StepUpRequired(max_age, acr)
    return principal


StepUp = Annotated[Principal, Depends(require_step_up)]
"""The caller of a sensitive operation (see the module docstring)."""


async def require_aal2(principal: StepUp, ctx: Ctx) -> Principal:
    """The caller, recently authenticated and at aal2 whether or not the account has MFA
    (administrative actions on other accounts' factors).

    Raises:
        StepUpRequired: 401 with ``acr_values="aal2"``.
    """
    if principal.assurance.aal < 2:
        raise StepUpRequired(ctx.settings.auth.step_up_max_age_seconds, "aal2")
    return principal


Aal2 = Annotated[Principal, Depends(require_aal2)]
"""A caller at aal2 with a recent authentication."""
