"""The role graph: inheritance closure and cycle detection (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from atrium.rbac.graph import RoleGraph, RoleNode
from atrium.rbac.permissions import ALL_PERMISSIONS, BUILTIN_ROLES


def _graph(spec: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> RoleGraph:
    now = datetime.now(UTC)
    return RoleGraph(
        {
            name: RoleNode(uuid.uuid4(), name, None, True, frozenset(p), parents, now, now)
            for name, (p, parents) in spec.items()
        }
    )


def test_permissions_are_inherited_transitively() -> None:
    graph = _graph(BUILTIN_ROLES)
    assert graph.permissions_of(["user"]) == {"profiles:read"}
    assert graph.permissions_of(["moderator"]) == {
        "profiles:read",
        "profiles:moderate",
        "users:read",
    }
    admin = graph.permissions_of(["admin"])
    assert {"profiles:read", "users:read", "users:write", "audit:read"} <= admin
    assert "roles:manage" not in admin


def test_superadmin_holds_every_permission_of_the_catalogue() -> None:
    graph = _graph(BUILTIN_ROLES)
    assert graph.permissions_of(["superadmin"]) == ALL_PERMISSIONS
    # ... and so does any role that inherits from it.
    graph = _graph({**BUILTIN_ROLES, "root": ((), ("superadmin",))})
    assert graph.permissions_of(["root"]) == ALL_PERMISSIONS


def test_would_cycle_detects_direct_and_indirect_cycles() -> None:
    graph = _graph({"a": ((), ()), "b": ((), ("a",)), "c": ((), ("b",))})
    assert graph.would_cycle("a", ["c"])
    assert graph.would_cycle("a", ["a"])
    assert not graph.would_cycle("c", ["a"])
