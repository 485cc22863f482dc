"""The permission catalogue: every permission Atrium checks, in one place.

A permission is a ``resource:action`` string. Roles grant permissions (directly or by
inheriting from other roles); routes check them with ``require("users:write")``
(:mod:`atrium.rbac.dependencies`). A permission not listed here cannot be granted or
required. Documented in docs/architecture.md ("Roles and permissions").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from atrium.models.role import ADMIN as ADMIN
from atrium.models.role import BUILTIN_ROLE_IDS as BUILTIN_ROLE_IDS
from atrium.models.role import MODERATOR as MODERATOR
from atrium.models.role import SUPERADMIN as SUPERADMIN
from atrium.models.role import USER as USER

PERMISSIONS: Final[dict[str, str]] = {
    "users:read": "List and view any account (admin user list, details).",
    "users:write": "Change any account: status (suspend/activate), verified flags, name.",
    "users:delete": "Soft-delete and restore accounts.",
    "sessions:revoke": "Revoke the sessions of any account.",
    "roles:read": "List and view roles.",
    "roles:assign": "Grant and revoke roles (only roles whose permissions the caller holds).",
    "roles:manage": "Create, change and delete roles.",
    "audit:read": "Read the audit trail of every account.",
    "profiles:read": "Read other users' profiles.",
    "profiles:moderate": "Moderate profiles: see private profiles, set the verified badge.",
    "files:manage": "Read and delete any account's files.",
    "users:mfa_reset": "Remove every second factor of an account (lost authenticator).",
    "notifications:broadcast": "Send a notification to every account or to a role's holders.",
    "identity_providers:manage": "Configure the identity providers of social login.",
    "webhooks:manage": "Create, change, test and delete webhook endpoints; read their "
    "delivery log and retry deliveries.",
    "analytics:read": "Read usage analytics (active accounts, logins, retention, devices).",
    "users:export": "Export any account's data for a data subject request (GDPR art. 15); audited.",
    "users:import": "Import accounts from a file, with their roles and password hashes "
    "(superadmin only by default: an import may grant any role).",
}

ALL_PERMISSIONS: Final[frozenset[str]] = frozenset(PERMISSIONS)
"""The platform's own permissions; with the applications' ones: :func:`all_permissions`."""

BUILTIN_ROLES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # name: (permissions, parents)
    USER: (("profiles:read",), ()),
    MODERATOR: (("profiles:moderate", "users:read"), (USER,)),
    ADMIN: (
        (
            "users:write",
            "users:delete",
            "sessions:revoke",
            "roles:read",
            "roles:assign",
            "audit:read",
            "files:manage",
            "users:mfa_reset",
            "notifications:broadcast",
            "webhooks:manage",
            "analytics:read",
            "users:export",
        ),
        (MODERATOR,),
    ),
    SUPERADMIN: ((), (ADMIN,)),
}


def is_known(permission: str) -> bool:
    return permission in PERMISSIONS


def all_permissions() -> frozenset[str]:
    """Every permission of the catalogue, the applications' included (what ``superadmin``
    holds)."""
    return frozenset(PERMISSIONS)


def register_permissions(permissions: dict[str, str] | Mapping[str, str]) -> None:
    """Add an application's permissions to the catalogue (name -> description), so roles
    can carry them and routes can ``require`` them. Idempotent for the same descriptions.

    Raises:
        ValueError: a name is already in the catalogue with another description.
    """
    for name, description in permissions.items():
        known = PERMISSIONS.get(name)
        if known is not None and known != description:
            raise ValueError(f"permission {name!r} is already registered")
    PERMISSIONS.update(permissions)
