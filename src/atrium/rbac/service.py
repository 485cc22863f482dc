"""The rules of roles: definitions, inheritance, grants, escalation and the last superadmin.

Escalation: a caller may only grant, revoke or define a role whose effective permissions
(with inheritance) they hold themselves, and may only manage an account whose effective
permissions they hold all of (so an ``admin`` cannot touch a ``superadmin``).

Every change publishes a new RBAC version with its commit (see
:mod:`atrium.rbac.resolver`), so revoked permissions stop working at once on every node,
and a change that cannot be published fails with 503 instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.context import AppContext
from atrium.events.service import emit
from atrium.models import Role, User
from atrium.rbac.authorized import Authorized
from atrium.rbac.exceptions import (
    BuiltinRoleProtected,
    EscalationRefused,
    LastSuperadmin,
    RoleCycle,
    RoleNotFound,
    UnknownPermission,
)
from atrium.rbac.graph import RoleGraph, RoleNode
from atrium.rbac.permissions import PERMISSIONS, SUPERADMIN
from atrium.rbac.repository import RoleRepository
from atrium.rbac.schemas import RoleCreate, RoleRead, RoleUpdate
from atrium.users.exceptions import UserNotFound


def role_read(graph: RoleGraph, node: RoleNode) -> RoleRead:
    return RoleRead(
        name=node.name,
        description=node.description,
        is_builtin=node.is_builtin,
        permissions=sorted(node.permissions),
        parents=list(node.parents),
        effective_permissions=sorted(graph.permissions_of([node.name])),
        mfa_required=node.mfa_required,
        effective_mfa_required=bool(graph.mfa_required_by([node.name])),
        created_at=node.created_at,
        updated_at=node.updated_at,
    )


def check_can_hold(caller: Authorized, permissions: Iterable[str]) -> None:
    """Raises EscalationRefused (403) naming the permissions the caller lacks."""
    missing = set(permissions) - caller.permissions
    if missing:
        raise EscalationRefused(missing)


async def protect_last_superadmin(db: AsyncSession, losing: Collection[uuid.UUID]) -> None:
    """Refuse a change after which no active, undeleted account would hold ``superadmin``.

    ``losing``: accounts about to stop counting (role revoked, suspended, deleted).
    Serialised against concurrent changes (row lock on PostgreSQL).

    Raises:
        LastSuperadmin: 409.
    """
    repo = RoleRepository(db)
    await repo.lock_superadmins()
    live = await repo.live_superadmins()
    if live and not (live - set(losing)):
        raise LastSuperadmin("At least one active superadmin must remain.")


async def managed_account(
    db: AsyncSession, caller: Authorized, user_id: uuid.UUID, graph: RoleGraph
) -> tuple[User, list[str]]:
    """The account ``user_id`` and the roles it holds directly, provided ``caller`` holds
    every permission the account has (``graph`` resolves them): the one check before an
    administrator or a role manager acts on an account.

    Raises:
        UserNotFound: 404. EscalationRefused: 403, the account is more privileged.
    """
    user = await db.get(User, user_id)
    if user is None:
        raise UserNotFound("No such user.")
    roles = await RoleRepository(db).role_names_of(user_id)
    check_can_hold(caller, graph.permissions_of(roles))
    return user, roles


def publish_rbac_change(db: AsyncSession, ctx: AppContext, user_ids: Iterable[uuid.UUID]) -> None:
    """With the commit: a new RBAC version for every node (pending before the commit, or a
    503 and a rollback when it cannot be published), and fresh /users/me snapshots."""
    ctx.rbac.publish_change_on_commit(db)
    ctx.principals.forget_users_on_commit(db, user_ids)


class RoleService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.roles = RoleRepository(db)

    async def list_roles(self) -> list[RoleRead]:
        graph = await self.roles.load_graph()
        return [role_read(graph, node) for node in graph.roles.values()]

    async def get(self, name: str) -> RoleRead:
        """Raises RoleNotFound (404)."""
        graph = await self.roles.load_graph()
        return role_read(graph, find_role(graph, name))

    def _check_definition(
        self,
        caller: Authorized,
        graph: RoleGraph,
        name: str,
        permissions: list[str],
        parents: list[str],
    ) -> None:
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            raise UnknownPermission(
                f"Unknown permission: {', '.join(unknown)}.",
                errors=[{"permission": p} for p in unknown],
            )
        for parent in parents:
            find_role(graph, parent)
        if name in parents or graph.would_cycle(name, parents):
            raise RoleCycle(f"Role {name!r} would inherit from itself.")
        check_can_hold(caller, set(permissions) | graph.permissions_of(parents))

    async def create(self, caller: Authorized, body: RoleCreate) -> RoleRead:
        """Create a role.

        Raises:
            RoleExists: 409. RoleNotFound: 404, an unknown parent. UnknownPermission: 422.
            EscalationRefused: 403, the role would carry permissions the caller lacks.
        """
        graph = await self.roles.load_graph()
        self._check_definition(caller, graph, body.name, body.permissions, body.parents)
        now = self.ctx.clock.now()
        role = Role(
            id=uuid.uuid4(),
            name=body.name,
            description=body.description,
            is_builtin=False,
            mfa_required=body.mfa_required,
            created_at=now,
            updated_at=now,
        )
        await self.roles.add(role)
        await self.roles.set_permissions(role.id, body.permissions)
        await self.roles.set_parents(role.id, [graph.roles[p].id for p in body.parents])
        await record(
            self.db,
            "role.created",
            at=now,
            actor_id=caller.user_id,
            target_type="role",
            target_id=role.name,
            after={
                "description": body.description,
                "permissions": sorted(set(body.permissions)),
                "parents": sorted(set(body.parents)),
                "mfa_required": body.mfa_required,
            },
        )
        publish_rbac_change(self.db, self.ctx, ())
        return await self.get(role.name)

    async def update(self, caller: Authorized, name: str, body: RoleUpdate) -> RoleRead:
        """Change a role's description, permissions or parents (lists are replaced).

        The caller must hold every permission the role carries before and after the
        change. ``superadmin``'s permissions and parents cannot change.

        Raises:
            RoleNotFound: 404. RoleCycle, UnknownPermission: 422.
            BuiltinRoleProtected: 409. EscalationRefused: 403.
        """
        graph = await self.roles.load_graph()
        node = find_role(graph, name)
        changes = body.model_dump(exclude_unset=True)
        for key in ("permissions", "parents", "mfa_required"):  # null: unchanged, []: none
            if changes.get(key, []) is None:
                del changes[key]
        if node.name == SUPERADMIN and ({"permissions", "parents"} & set(changes)):
            raise BuiltinRoleProtected("superadmin always holds every permission.")
        check_can_hold(caller, graph.permissions_of([name]))
        permissions = changes.get("permissions", list(node.permissions)) or []
        parents = changes.get("parents", list(node.parents)) or []
        self._check_definition(caller, graph, name, permissions, parents)
        before = {
            "description": node.description,
            "permissions": sorted(node.permissions),
            "parents": sorted(node.parents),
            "mfa_required": node.mfa_required,
        }
        after = {
            "description": changes.get("description", node.description),
            "permissions": sorted(set(permissions)),
            "parents": sorted(set(parents)),
            "mfa_required": changes.get("mfa_required", node.mfa_required),
        }
        role = await self.roles.get(name)
        assert role is not None
        now = self.ctx.clock.now()
        if "description" in changes:
            role.description = changes["description"]
        if "mfa_required" in changes:
            role.mfa_required = changes["mfa_required"]
        role.updated_at = now
        await self.db.flush()
        if "permissions" in changes:
            await self.roles.set_permissions(role.id, permissions)
        if "parents" in changes:
            await self.roles.set_parents(role.id, [graph.roles[p].id for p in parents])
        changed = [k for k in after if after[k] != before[k]]
        await record(
            self.db,
            "role.updated",
            at=now,
            actor_id=caller.user_id,
            target_type="role",
            target_id=name,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
        await emit(
            self.db,
            "role.updated",
            subject=role.id,
            actor=caller.user_id,
            data={"role": name, "fields": changed},
            at=now,
        )
        publish_rbac_change(self.db, self.ctx, ())
        return await self.get(name)

    async def delete(self, caller: Authorized, name: str) -> None:
        """Delete a custom role; its grants and inheritance edges go with it.

        Raises:
            RoleNotFound: 404. BuiltinRoleProtected: 409. EscalationRefused: 403.
        """
        graph = await self.roles.load_graph()
        node = find_role(graph, name)
        if node.is_builtin:
            raise BuiltinRoleProtected(f"The built-in role {name!r} cannot be deleted.")
        check_can_hold(caller, graph.permissions_of([name]))
        holders = await self.roles.count_holders(node.id)
        await self.roles.delete(node.id)
        await record(
            self.db,
            "role.deleted",
            at=self.ctx.clock.now(),
            actor_id=caller.user_id,
            target_type="role",
            target_id=name,
            before={
                "permissions": sorted(node.permissions),
                "parents": list(node.parents),
            },
            details={"holders": holders},
        )
        publish_rbac_change(self.db, self.ctx, ())

    async def grant(self, caller: Authorized, user_id: uuid.UUID, name: str) -> list[str]:
        """Give role ``name`` to a user (idempotent); the user's roles afterwards.

        Raises:
            UserNotFound, RoleNotFound: 404. EscalationRefused: 403, the role carries a
            permission the caller lacks, or the account is more privileged than them.
        """
        graph = await self.roles.load_graph()
        node = find_role(graph, name)
        check_can_hold(caller, graph.permissions_of([name]))
        await managed_account(self.db, caller, user_id, graph)
        now = self.ctx.clock.now()
        if await self.roles.grant([user_id], node.id, now, caller.user_id):
            await record(
                self.db,
                "role.granted",
                at=now,
                actor_id=caller.user_id,
                target_type="user",
                target_id=user_id,
                details={"role": name},
            )
            await emit(
                self.db,
                "role.granted",
                subject=user_id,
                actor=caller.user_id,
                data={"role": name},
                at=now,
            )
            publish_rbac_change(self.db, self.ctx, [user_id])
        return await self.roles.role_names_of(user_id)

    async def revoke(self, caller: Authorized, user_id: uuid.UUID, name: str) -> list[str]:
        """Take role ``name`` from a user (idempotent); the user's roles afterwards.

        Raises:
            UserNotFound, RoleNotFound: 404. EscalationRefused: 403.
            LastSuperadmin: 409, it is the last active superadmin.
        """
        graph = await self.roles.load_graph()
        node = find_role(graph, name)
        check_can_hold(caller, graph.permissions_of([name]))
        await managed_account(self.db, caller, user_id, graph)
        if name == SUPERADMIN:
            await protect_last_superadmin(self.db, [user_id])
        if await self.roles.revoke([user_id], node.id):
            await record(
                self.db,
                "role.revoked",
                at=self.ctx.clock.now(),
                actor_id=caller.user_id,
                target_type="user",
                target_id=user_id,
                details={"role": name},
            )
            await emit(
                self.db,
                "role.revoked",
                subject=user_id,
                actor=caller.user_id,
                data={"role": name},
                at=self.ctx.clock.now(),
            )
            publish_rbac_change(self.db, self.ctx, [user_id])
        return await self.roles.role_names_of(user_id)


def find_role(graph: RoleGraph, name: str) -> RoleNode:
    node = graph.roles.get(name)
    if node is None:
        raise RoleNotFound(f"No role named {name!r}.")
    return node
