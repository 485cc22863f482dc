"""The caller of a permission-checked request, as services receive it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from atrium.auth.principal import Principal


@dataclass(frozen=True)
class Authorized:
    """An authenticated caller together with their roles and effective permissions
    (built by :func:`atrium.rbac.dependencies.require`; services take it as a plain value)."""

    principal: Principal
    roles: tuple[str, ...]
    permissions: frozenset[str]

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id
