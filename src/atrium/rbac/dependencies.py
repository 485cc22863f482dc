"""Permission checks as FastAPI dependencies.

``require("users:write")`` authenticates the caller (401 ``not_authenticated`` /
``invalid_token``) and resolves their effective permissions — never from the access
token, always from the current role graph (see :mod:`atrium.rbac.resolver`) — then
answers 403 ``permission_denied`` naming the missing permission::

    @router.get("/admin/users")
    async def list_users(caller: Annotated[Authorized, require("users:read")]) -> ...
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Depends

from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.principal import Principal
from atrium.context import Ctx
from atrium.rbac.exceptions import PermissionDenied
from atrium.rbac.permissions import is_known


@dataclass(frozen=True)
class Authorized:
    """An authenticated caller together with their roles and effective permissions."""

    principal: Principal
    roles: tuple[str, ...]
    permissions: frozenset[str]

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id


def require(*permissions: str) -> Any:
    """A dependency (``Depends``) that lets through only callers holding every one of
    ``permissions``. Unknown permission names fail at import time, not at request time."""
    for permission in permissions:
        if not is_known(permission):
            raise ValueError(f"unknown permission {permission!r}")

    async def dependency(principal: CurrentPrincipal, ctx: Ctx) -> Authorized:
        grants = await ctx.rbac.grants_of(principal.user_id)
        missing = [p for p in permissions if p not in grants.permissions]
        if missing:
            raise PermissionDenied(missing)
        return Authorized(principal=principal, roles=grants.roles, permissions=grants.permissions)

    return Depends(dependency)
