"""Permission checks as FastAPI dependencies.

``require("users:write")`` authenticates the caller (401 ``not_authenticated`` /
``invalid_token``) and resolves their effective permissions — never from the access
token, always from the current role graph (see :mod:`atrium.rbac.resolver`) — then
answers 403 ``permission_denied`` naming the missing permission. A caller signed in with
an API key holds only the permissions that are both in the key's scopes and among the
owner's current ones::

    @router.get("/admin/users")
    async def list_users(caller: Annotated[Authorized, require("users:read")]) -> ...

A holder of a role that requires MFA (``role.mfa_required``, inherited) must be at aal2:
at aal1 the answer is 401 ``step_up_required`` when the account has a factor, 403
``mfa_enrollment_required`` when it has none and the grace period is over (during it,
aal1 passes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from atrium.auth.assurance import mfa_requirement
from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.exceptions import MfaEnrollmentRequired
from atrium.auth.principal import Principal
from atrium.auth.stepup import StepUpRequired
from atrium.config import UnverifiedAction
from atrium.context import AppContext, Ctx
from atrium.rbac.authorized import Authorized as Authorized
from atrium.rbac.exceptions import PermissionDenied as PermissionDenied
from atrium.rbac.permissions import is_known


def require(*permissions: str) -> Any:
    """A dependency (``Depends``) that lets through only callers holding every one of
    ``permissions``. Unknown permission names fail at import time, not at request time."""
    for permission in permissions:
        if isinstance(permission, UnverifiedAction):
            raise TypeError(f"{permission!r} is an unverified-account action, not a permission")
        if not is_known(permission):
            raise ValueError(f"unknown permission {permission!r}")

    async def dependency(principal: CurrentPrincipal, ctx: Ctx) -> Authorized:
        grants = await ctx.rbac.grants_of(principal.user_id)
        held = grants.permissions
        if principal.scopes is not None:
            held = held & principal.scopes  # an API key: its scopes ∩ the owner's
        missing = [p for p in permissions if p not in held]
        if missing:
            raise PermissionDenied(missing)
        if grants.mfa_required_roles and principal.assurance.aal < 2:
            await check_role_requirement(principal, ctx)
        return Authorized(principal=principal, roles=grants.roles, permissions=held)

    return Depends(dependency)


async def check_role_requirement(principal: Principal, ctx: AppContext) -> None:
    """A holder of an ``mfa_required`` role at aal1: through only during the grace period
    without a factor; with a factor, step up to aal2 (an API key of such an account
    passes); the hosted console applies it too. Read in a short session of its own: on
    SQLite the request's transaction may hold the write lock.

    Raises:
        StepUpRequired: 401, the account has a factor and the session is at aal1.
        MfaEnrollmentRequired: 403, no factor and the grace period is over.
    """
    async with ctx.sessionmaker() as db:
        requirement = await mfa_requirement(db, ctx, principal.user_id)
    now = ctx.clock.now()
    if not requirement.required or requirement.in_grace(now):
        return
    if requirement.has_factor:
        if principal.api_key_id is not None:
            return  # a key cannot step up; creating it took a session's step-up
        raise StepUpRequired(ctx.settings.auth.step_up_max_age_seconds, "aal2")
    raise MfaEnrollmentRequired("A role of your account requires a second factor.")


# The role-management checks, named once (``caller: RolesAssign``).
RolesRead = Annotated[Authorized, require("roles:read")]
RolesManage = Annotated[Authorized, require("roles:manage")]
RolesAssign = Annotated[Authorized, require("roles:assign")]
