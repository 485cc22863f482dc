"""The permission catalogue: every permission Atrium checks, in one place.

A permission is a ``resource:action`` string. Roles grant permissions (directly or by
inheriting from other roles); routes check them with ``require("users:write")``
(:mod:`atrium.rbac.dependencies`). A permission not listed here cannot be granted or
required. Documented in docs/architecture.md ("Roles and permissions").
"""

from __future__ import annotations

import uuid
from typing import Final

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
}

ALL_PERMISSIONS: Final[frozenset[str]] = frozenset(PERMISSIONS)

USER, MODERATOR, ADMIN, SUPERADMIN = "user", "moderator", "admin", "superadmin"

# Built-in roles as created by migration 0003, with ``files:manage`` given to admin by 0004
# (fixed ids so data migrations and registration can refer to them without a lookup).
# ``superadmin`` holds every permission of the catalogue, including any added later,
# rather than a stored list.
BUILTIN_ROLE_IDS: Final[dict[str, uuid.UUID]] = {
    USER: uuid.UUID("00000000-0000-4000-8000-000000000001"),
    MODERATOR: uuid.UUID("00000000-0000-4000-8000-000000000002"),
    ADMIN: uuid.UUID("00000000-0000-4000-8000-000000000003"),
    SUPERADMIN: uuid.UUID("00000000-0000-4000-8000-000000000004"),
}
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
        ),
        (MODERATOR,),
    ),
    SUPERADMIN: ((), (ADMIN,)),
}


def is_known(permission: str) -> bool:
    return permission in PERMISSIONS
