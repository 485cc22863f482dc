"""Bulk account actions: one action on up to 1000 accounts, all or nothing, with a
constant number of statements whatever the number of ids."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.admin.accounts import end_sessions
from atrium.admin.exceptions import BulkActionFailed, UserDeleted
from atrium.admin.repository import AdminUserRepository
from atrium.admin.schemas import BulkAction, BulkItemResult, BulkRequest, BulkResponse
from atrium.audit.service import new_event
from atrium.context import AppContext
from atrium.errors import AppError
from atrium.events.service import emit
from atrium.models import AuditEvent, User, UserStatus
from atrium.profiles.cache import forget_profiles
from atrium.rbac.authorized import Authorized
from atrium.rbac.exceptions import EscalationRefused, LastSuperadmin, PermissionDenied
from atrium.rbac.permissions import SUPERADMIN
from atrium.rbac.repository import RoleRepository
from atrium.rbac.service import (
    check_can_hold,
    find_role,
    protect_last_superadmin,
    publish_rbac_change,
)
from atrium.users.exceptions import UserNotFound

log = structlog.get_logger(__name__)

_BULK_PERMISSION = {
    BulkAction.suspend: "users:write",
    BulkAction.activate: "users:write",
    BulkAction.delete: "users:delete",
    BulkAction.add_role: "roles:assign",
    BulkAction.remove_role: "roles:assign",
}


class BulkAdmin:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.users = AdminUserRepository(db)
        self.roles = RoleRepository(db)

    async def bulk(self, caller: Authorized, body: BulkRequest) -> BulkResponse:
        """Apply one action to up to 1000 accounts in one transaction, all or nothing.

        A constant number of statements whatever the number of ids (plus one audit
        event per changed account, inserted in one batch).

        Raises:
            PermissionDenied: 403, the caller lacks the action's permission.
            EscalationRefused: 403, the role carries permissions the caller lacks.
            RoleNotFound: 404. BulkActionFailed: 409 with the per-id results; nothing
            was changed.
        """
        needed = _BULK_PERMISSION[body.action]
        if needed not in caller.permissions:
            raise PermissionDenied([needed])
        ids = list(dict.fromkeys(body.ids))
        graph = await self.roles.load_graph()
        role_id: uuid.UUID | None = None
        if body.role is not None:
            node = find_role(graph, body.role)
            role_id = node.id
            check_can_hold(caller, graph.permissions_of([body.role]))
        users = await self.users.get_many(ids)
        roles = await self.roles.role_names_of_many(list(users))
        results: dict[uuid.UUID, BulkItemResult] = {}
        for uid in ids:
            user = users.get(uid)
            err: AppError | None = None
            if user is None:
                err = UserNotFound("No such user.")
            elif not graph.permissions_of(roles[uid]) <= caller.permissions:
                err = EscalationRefused(graph.permissions_of(roles[uid]) - caller.permissions)
            elif user.deleted_at is not None and body.action is not BulkAction.delete:
                err = UserDeleted("Restore the account before changing it.")
            results[uid] = (
                BulkItemResult(id=uid, ok=False, code=err.code, detail=err.detail)
                if err
                else BulkItemResult(id=uid, ok=True)
            )
        losing = self._losing_superadmin(body, users, roles)
        if losing and all(r.ok for r in results.values()):
            try:
                await protect_last_superadmin(self.db, losing)
            except LastSuperadmin as exc:
                for uid in losing:
                    results[uid] = BulkItemResult(
                        id=uid, ok=False, code=exc.code, detail=exc.detail
                    )
        if not all(r.ok for r in results.values()):
            raise BulkActionFailed(
                f"{sum(not r.ok for r in results.values())} of {len(ids)} ids failed.",
                errors=[r.model_dump(mode="json") for r in results.values()],
            )
        changed = await self._apply(caller, body, users, role_id)
        for uid in changed:
            results[uid].changed = True
        return BulkResponse(action=body.action, results=list(results.values()))

    @staticmethod
    def _losing_superadmin(
        body: BulkRequest, users: dict[uuid.UUID, User], roles: dict[uuid.UUID, list[str]]
    ) -> list[uuid.UUID]:
        if body.action in (BulkAction.suspend, BulkAction.delete) or (
            body.action is BulkAction.remove_role and body.role == SUPERADMIN
        ):
            return [uid for uid in users if SUPERADMIN in roles[uid]]
        return []

    async def _apply(
        self,
        caller: Authorized,
        body: BulkRequest,
        users: dict[uuid.UUID, User],
        role_id: uuid.UUID | None,
    ) -> list[uuid.UUID]:
        """Apply the checked action; the ids it changed (one audit event each)."""
        now = self.ctx.clock.now()
        if body.action in (BulkAction.suspend, BulkAction.activate):
            changed, events = await self._set_status(caller, body.action, users, now)
        elif body.action is BulkAction.delete:
            changed, events = await self._delete(caller, users, now)
        else:
            assert role_id is not None
            changed, events = await self._change_role(caller, body, users, role_id, now)
        self.db.add_all(events)
        await self.db.flush()
        return changed

    async def _set_status(
        self,
        caller: Authorized,
        action: BulkAction,
        users: dict[uuid.UUID, User],
        now: datetime,
    ) -> tuple[list[uuid.UUID], list[AuditEvent]]:
        suspend = action is BulkAction.suspend
        target = UserStatus.suspended.value if suspend else UserStatus.active.value
        changed = [uid for uid, u in users.items() if u.status != target]
        await self.users.set_fields(changed, status=target, updated_at=now)
        await forget_profiles(self.db, self.ctx, *(users[uid].username for uid in changed))
        revoked = 0
        if suspend:
            revoked = await end_sessions(
                self.db, self.ctx, changed, now, "suspended", caller.user_id
            )
        else:
            self.ctx.principals.forget_users_on_commit(self.db, changed)
        name = "admin.user_suspended" if suspend else "admin.user_activated"
        type_ = "user.suspended" if suspend else "user.reactivated"
        for uid in changed:
            await emit(self.db, type_, subject=uid, actor=caller.user_id, at=now)
        events = [
            new_event(
                name,
                at=now,
                actor_id=caller.user_id,
                target_type="user",
                target_id=uid,
                before={"status": users[uid].status},
                after={"status": target},
                details={"bulk": True},
            )
            for uid in changed
        ]
        log.info("bulk_status", action=action.value, changed=len(changed), revoked=revoked)
        return changed, events

    async def _delete(
        self, caller: Authorized, users: dict[uuid.UUID, User], now: datetime
    ) -> tuple[list[uuid.UUID], list[AuditEvent]]:
        changed = [uid for uid, u in users.items() if u.deleted_at is None]
        await self.users.set_fields(changed, deleted_at=now, updated_at=now)
        await forget_profiles(self.db, self.ctx, *(users[uid].username for uid in changed))
        await end_sessions(self.db, self.ctx, changed, now, "account_deleted", caller.user_id)
        for uid in changed:
            await emit(
                self.db,
                "user.deleted",
                subject=uid,
                actor=caller.user_id,
                data={"by_self": False},
                at=now,
            )
        events = [
            new_event(
                "admin.user_deleted",
                at=now,
                actor_id=caller.user_id,
                target_type="user",
                target_id=uid,
                before={"deleted_at": None},
                after={"deleted_at": now},
                details={"bulk": True},
            )
            for uid in changed
        ]
        return changed, events

    async def _change_role(
        self,
        caller: Authorized,
        body: BulkRequest,
        users: dict[uuid.UUID, User],
        role_id: uuid.UUID,
        now: datetime,
    ) -> tuple[list[uuid.UUID], list[AuditEvent]]:
        if body.action is BulkAction.add_role:
            gained = await self.roles.grant(list(users), role_id, now, caller.user_id)
            name = "role.granted"
        else:
            gained = await self.roles.revoke(list(users), role_id)
            name = "role.revoked"
        changed = [uid for uid in users if uid in gained]
        for uid in changed:
            await emit(
                self.db, name, subject=uid, actor=caller.user_id, data={"role": body.role}, at=now
            )
        events = [
            new_event(
                name,
                at=now,
                actor_id=caller.user_id,
                target_type="user",
                target_id=uid,
                details={"role": body.role, "bulk": True},
            )
            for uid in changed
        ]
        if changed:
            publish_rbac_change(self.db, self.ctx, changed)
        return changed, events
