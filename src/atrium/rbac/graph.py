"""The role graph: roles, their own permissions and their parents, and the closure."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from atrium.rbac.permissions import SUPERADMIN, all_permissions


@dataclass(frozen=True)
class RoleNode:
    id: uuid.UUID
    name: str
    description: str | None
    is_builtin: bool
    permissions: frozenset[str]
    parents: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    # Holders (of this role or of any role inheriting from it) must use a second factor.
    mfa_required: bool = False


class RoleGraph:
    """An immutable snapshot of every role; safe to share between requests."""

    def __init__(self, roles: Mapping[str, RoleNode]) -> None:
        self.roles = dict(roles)

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """``names`` and every role they inherit from, transitively (unknown names are
        ignored; the walk tolerates a cycle even though none can be stored)."""
        seen: set[str] = set()
        stack = [n for n in names if n in self.roles]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(p for p in self.roles[name].parents if p in self.roles)
        return seen

    def permissions_of(self, names: Iterable[str]) -> frozenset[str]:
        """The effective permissions of holding ``names``: their own and inherited ones;
        every permission of the catalogue if ``superadmin`` is among them."""
        closure = self.ancestors(names)
        if SUPERADMIN in closure:
            return all_permissions()
        out: set[str] = set()
        for name in closure:
            out |= self.roles[name].permissions
        return frozenset(out)

    def mfa_required_by(self, names: Iterable[str]) -> tuple[str, ...]:
        """Those of ``names`` that require MFA: the role itself or one of its ancestors
        has ``mfa_required`` (the attribute is inherited like permissions)."""
        return tuple(
            sorted(
                name
                for name in names
                if any(self.roles[a].mfa_required for a in self.ancestors([name]))
            )
        )

    def would_cycle(self, name: str, parents: Iterable[str]) -> bool:
        """Whether giving ``name`` these ``parents`` would make it its own ancestor."""
        return name in self.ancestors(parents)
