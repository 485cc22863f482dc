"""Errors of roles and permissions."""

from __future__ import annotations

from collections.abc import Iterable

from atrium.errors import AppError, Conflict, NotFound


class PermissionDenied(AppError):
    """The caller is authenticated but lacks a permission; ``detail`` names it."""

    status = 403
    code = "permission_denied"
    title = "Permission denied"

    def __init__(self, missing: Iterable[str]) -> None:
        names = sorted(set(missing))
        super().__init__(
            f"Missing permission: {', '.join(names)}.",
            errors=[{"permission": name} for name in names],
        )
        self.missing = names


class EscalationRefused(PermissionDenied):
    """Granting (or revoking, or defining) a role that carries permissions the caller
    does not hold, or acting on an account more privileged than the caller."""

    code = "escalation_refused"
    title = "Cannot grant permissions you do not hold"


class RoleNotFound(NotFound):
    code = "role_not_found"
    title = "Role not found"


class RoleExists(Conflict):
    code = "role_exists"
    title = "A role with this name already exists"


class RoleCycle(AppError):
    status = 422
    code = "role_cycle"
    title = "Role inheritance would form a cycle"


class UnknownPermission(AppError):
    status = 422
    code = "unknown_permission"
    title = "Unknown permission"


class BuiltinRoleProtected(Conflict):
    code = "builtin_role_protected"
    title = "Built-in roles cannot be deleted or redefined this way"


class LastSuperadmin(Conflict):
    code = "last_superadmin"
    title = "The last superadmin cannot be removed"
