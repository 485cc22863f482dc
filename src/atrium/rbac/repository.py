"""Every query of roles, role inheritance and role grants."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import Role, RoleParent, RolePermission, User, UserRole
from atrium.rbac.exceptions import RoleExists
from atrium.rbac.graph import RoleGraph, RoleNode
from atrium.rbac.permissions import BUILTIN_ROLE_IDS, SUPERADMIN
from atrium.users import grants


class RoleRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def load_graph(self) -> RoleGraph:
        """Every role with its permissions and parents: three small queries."""
        roles = list((await self.db.execute(select(Role).order_by(Role.name))).scalars())
        perms: dict[uuid.UUID, list[str]] = {}
        for role_id, permission in await self.db.execute(
            select(RolePermission.role_id, RolePermission.permission)
        ):
            perms.setdefault(role_id, []).append(permission)
        parents: dict[uuid.UUID, list[uuid.UUID]] = {}
        for role_id, parent_id in await self.db.execute(
            select(RoleParent.role_id, RoleParent.parent_id)
        ):
            parents.setdefault(role_id, []).append(parent_id)
        names = {r.id: r.name for r in roles}
        return RoleGraph(
            {
                r.name: RoleNode(
                    id=r.id,
                    name=r.name,
                    description=r.description,
                    is_builtin=r.is_builtin,
                    permissions=frozenset(perms.get(r.id, ())),
                    parents=tuple(sorted(names[p] for p in parents.get(r.id, ()))),
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    mfa_required=r.mfa_required,
                )
                for r in roles
            }
        )

    async def get(self, name: str) -> Role | None:
        return (await self.db.execute(select(Role).where(Role.name == name))).scalar_one_or_none()

    async def add(self, role: Role) -> None:
        """Insert ``role``; the unique index on ``name`` decides duplicates.

        Raises:
            RoleExists: 409.
        """
        self.db.add(role)
        try:
            await self.db.flush()
        except IntegrityError as exc:
            raise RoleExists(f"A role named {role.name!r} already exists.") from exc

    async def set_permissions(self, role_id: uuid.UUID, permissions: Iterable[str]) -> None:
        await self.db.execute(delete(RolePermission).where(RolePermission.role_id == role_id))
        rows = [{"role_id": role_id, "permission": p} for p in sorted(set(permissions))]
        if rows:
            await self.db.execute(insert(RolePermission), rows)

    async def set_parents(self, role_id: uuid.UUID, parent_ids: Iterable[uuid.UUID]) -> None:
        await self.db.execute(delete(RoleParent).where(RoleParent.role_id == role_id))
        rows = [{"role_id": role_id, "parent_id": p} for p in sorted(set(parent_ids))]
        if rows:
            await self.db.execute(insert(RoleParent), rows)

    async def delete(self, role_id: uuid.UUID) -> None:
        await self.db.execute(delete(Role).where(Role.id == role_id))

    async def role_names_of(self, user_id: uuid.UUID) -> list[str]:
        """The names of the roles ``user_id`` holds directly, sorted."""
        return await grants.role_names_of(self.db, user_id)

    async def role_names_of_many(
        self, user_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        """Roles held directly by each of ``user_ids``, in one query."""
        out: dict[uuid.UUID, list[str]] = {uid: [] for uid in user_ids}
        if not user_ids:
            return out
        rows = await self.db.execute(
            select(UserRole.user_id, Role.name)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id.in_(list(user_ids)))
            .order_by(UserRole.user_id, Role.name)
        )
        for user_id, name in rows:
            out[user_id].append(name)
        return out

    async def grant(
        self,
        user_ids: Collection[uuid.UUID],
        role_id: uuid.UUID,
        now: datetime,
        granted_by: uuid.UUID | None,
    ) -> set[uuid.UUID]:
        """Give ``role_id`` to each of ``user_ids`` that lacks it; the ids that gained it
        (see :func:`atrium.users.grants.grant_role`)."""
        return await grants.grant_role(self.db, user_ids, role_id, now, granted_by)

    async def grant_builtin(self, user_id: uuid.UUID, name: str, now: datetime) -> None:
        """Give the built-in role ``name`` to a user who does not hold it yet (two statements:
        see :func:`atrium.users.grants.grant_role`)."""
        await grants.grant_builtin_role(self.db, user_id, name, now)

    async def revoke(self, user_ids: Collection[uuid.UUID], role_id: uuid.UUID) -> set[uuid.UUID]:
        """Take ``role_id`` from each of ``user_ids``; the ids that held it."""
        if not user_ids:
            return set()
        result = await self.db.execute(
            delete(UserRole)
            .where(UserRole.role_id == role_id, UserRole.user_id.in_(list(user_ids)))
            .returning(UserRole.user_id)
        )
        return set(result.scalars())

    async def lock_superadmins(self) -> None:
        """Serialise changes that may remove a superadmin (row lock on PostgreSQL; SQLite
        already serialises writers with ``BEGIN IMMEDIATE``)."""
        await self.db.execute(
            select(Role.id).where(Role.id == BUILTIN_ROLE_IDS[SUPERADMIN]).with_for_update()
        )

    async def live_superadmins(self) -> set[uuid.UUID]:
        """Active, not deleted accounts holding the superadmin role directly."""
        return set(
            (
                await self.db.execute(
                    select(UserRole.user_id)
                    .join(User, User.id == UserRole.user_id)
                    .where(
                        UserRole.role_id == BUILTIN_ROLE_IDS[SUPERADMIN],
                        User.status == "active",
                        User.deleted_at.is_(None),
                    )
                )
            ).scalars()
        )

    async def count_holders(self, role_id: uuid.UUID) -> int:
        return int(
            (
                await self.db.execute(
                    select(func.count()).select_from(UserRole).where(UserRole.role_id == role_id)
                )
            ).scalar_one()
        )
