"""The rules of account administration: list, view, change, suspend, soft-delete,
restore, purge and bulk actions.

A suspended account cannot log in or refresh, and its sessions are revoked at once
(database rows and principal-cache tombstones). A soft-deleted account (``deleted_at``)
cannot log in, is hidden from the default list, keeps its email, and can be restored
within ``accounts.deleted_retention_days``; ``atrium purge-deleted`` removes it after.
An administrator can only act on accounts whose permissions they hold all of (see
:mod:`atrium.rbac.service`), and no change may leave the system without an active
superadmin.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.admin.exceptions import (
    BulkActionFailed,
    RetentionExpired,
    UserDeleted,
    UserNotDeleted,
    UserNotFound,
)
from atrium.admin.repository import (
    NULLABLE_SORTS,
    AdminUserRepository,
    Position,
    UserFilter,
)
from atrium.admin.schemas import (
    AccountStatus,
    AdminUserRead,
    AdminUserUpdate,
    BulkAction,
    BulkItemResult,
    BulkRequest,
    BulkResponse,
    SessionsRevoked,
    UserSort,
)
from atrium.audit.service import new_event, record
from atrium.context import AppContext
from atrium.core.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from atrium.core.storage import Storage
from atrium.errors import AppError
from atrium.files.cleanup import delete_user_objects
from atrium.models import User, UserStatus
from atrium.profiles.cache import forget_profiles
from atrium.rbac.dependencies import Authorized
from atrium.rbac.exceptions import EscalationRefused, LastSuperadmin, PermissionDenied
from atrium.rbac.graph import RoleGraph
from atrium.rbac.permissions import SUPERADMIN
from atrium.rbac.repository import RoleRepository
from atrium.rbac.service import (
    check_can_hold,
    find_role,
    protect_last_superadmin,
    publish_rbac_change,
)

log = structlog.get_logger(__name__)

_BULK_PERMISSION = {
    BulkAction.suspend: "users:write",
    BulkAction.activate: "users:write",
    BulkAction.delete: "users:delete",
    BulkAction.add_role: "roles:assign",
    BulkAction.remove_role: "roles:assign",
}


def admin_user_read(user: User, roles: list[str]) -> AdminUserRead:
    status = AccountStatus.deleted if user.deleted_at is not None else AccountStatus(user.status)
    return AdminUserRead(
        id=user.id,
        email=user.email,
        username=user.username,
        full_name=user.full_name,
        status=status,
        email_verified=user.email_verified_at is not None,
        profile_verified=user.profile_verified,
        roles=roles,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
        deleted_at=user.deleted_at,
    )


def _snapshot(user: User) -> dict[str, Any]:
    """The administrable fields of ``user``, for audit before/after."""
    return {
        "status": user.status,
        "email_verified": user.email_verified_at is not None,
        "profile_verified": user.profile_verified,
        "full_name": user.full_name,
        "deleted_at": user.deleted_at,
    }


def _cursor_value(user: User, sort: str) -> Any:
    value = {"created_at": user.created_at, "email": user.email_normalized}.get(
        sort, user.last_login_at
    )
    return value.isoformat() if isinstance(value, datetime) else value


def _parse_position(cursor: str, sort: UserSort) -> Position:
    pos = decode_cursor(cursor, kind=f"users:{sort.value}")
    key = sort.value.lstrip("-")
    try:
        raw, user_id = pos["v"], uuid.UUID(pos["id"])
        if raw is None:
            if key not in NULLABLE_SORTS:
                raise ValueError("null position")
            return Position(None, user_id)
        if key == "email":
            if not isinstance(raw, str):
                raise ValueError("bad email position")
            return Position(raw, user_id)
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise ValueError("naive position")
        return Position(value, user_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor("The cursor is not valid.") from exc


class AdminService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.users = AdminUserRepository(db)
        self.roles = RoleRepository(db)

    # --- reading -------------------------------------------------------------------------

    async def list_users(
        self,
        filters: UserFilter,
        sort: UserSort,
        limit: int,
        cursor: str | None,
        role: str | None = None,
    ) -> Page[AdminUserRead]:
        """One page of accounts and the cursor of the next (two queries: the page and
        the roles of its accounts; three when a ``last_login_at`` page reaches the
        accounts that never logged in).

        Raises:
            InvalidCursor: 422.
        """
        key = sort.value.lstrip("-")
        after = _parse_position(cursor, sort) if cursor else None
        if role is not None:
            node = (await self.ctx.rbac.graph()).roles.get(role)
            if node is None:
                return Page(items=[], next_cursor=None)
            filters = dataclasses.replace(filters, role_id=node.id)
        rows = await self.users.list_users(
            filters,
            sort=key,
            descending=sort.value.startswith("-"),
            limit=limit,
            after=after,
        )
        page = rows[:limit]
        roles = await self.roles.role_names_of_many([u.id for u in page])
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(
                {"k": f"users:{sort.value}", "v": _cursor_value(last, key), "id": str(last.id)}
            )
        return Page(items=[admin_user_read(u, roles[u.id]) for u in page], next_cursor=next_cursor)

    async def _target(
        self, caller: Authorized, user_id: uuid.UUID, graph: RoleGraph | None = None
    ) -> tuple[User, list[str]]:
        # The cached graph first: on SQLite, loading it through another connection after
        # this request's write transaction has begun would wait on its own lock.
        graph = graph or await self.ctx.rbac.graph()
        user = await self.db.get(User, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        roles = await self.roles.role_names_of(user_id)
        check_can_hold(caller, graph.permissions_of(roles))
        return user, roles

    async def get_user(self, user_id: uuid.UUID) -> AdminUserRead:
        """Raises UserNotFound (404). Soft-deleted accounts are shown (status ``deleted``)."""
        user = await self.db.get(User, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return admin_user_read(user, await self.roles.role_names_of(user_id))

    # --- single-account changes ----------------------------------------------------------

    async def _end_sessions(self, user_ids: list[uuid.UUID], now: datetime, reason: str) -> int:
        revoked = await self.users.revoke_sessions_of(user_ids, now, reason)
        self.ctx.principals.revoke_on_commit(self.db, revoked)
        self.ctx.principals.forget_users_on_commit(self.db, user_ids)
        return len(revoked)

    async def update_user(
        self, caller: Authorized, user_id: uuid.UUID, body: AdminUserUpdate
    ) -> AdminUserRead:
        """Apply an administrator's changes; suspending revokes every session at once.

        Raises:
            UserNotFound: 404. UserDeleted: 409. LastSuperadmin: 409.
            EscalationRefused: 403, the account is more privileged than the caller.
        """
        user, roles = await self._target(caller, user_id)
        if user.deleted_at is not None:
            raise UserDeleted("Restore the account before changing it.")
        changes = body.model_dump(exclude_unset=True)
        before = _snapshot(user)
        now = self.ctx.clock.now()
        suspending = changes.get("status") == "suspended" and user.status != "suspended"
        if suspending and SUPERADMIN in roles:
            await protect_last_superadmin(self.db, [user.id])
        if "status" in changes and changes["status"] is not None:
            user.status = changes["status"]
        if "email_verified" in changes and changes["email_verified"] is not None:
            if changes["email_verified"] and user.email_verified_at is None:
                user.email_verified_at = now
            elif not changes["email_verified"]:
                user.email_verified_at = None
        if "profile_verified" in changes and changes["profile_verified"] is not None:
            user.profile_verified = changes["profile_verified"]
        if "full_name" in changes:
            user.full_name = changes["full_name"]
        after = _snapshot(user)
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            user.updated_at = now
        await self.db.flush()
        # Status and the verified badge show in (or hide) the public profile.
        await forget_profiles(self.db, self.ctx, user.username)
        details: dict[str, Any] | None = None
        if suspending:
            details = {"sessions_revoked": await self._end_sessions([user.id], now, "suspended")}
        else:
            self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        if changed:
            action = "admin.user_updated"
            if "status" in changed:
                action = "admin.user_suspended" if suspending else "admin.user_activated"
            await record(
                self.db,
                action,
                at=now,
                actor_id=caller.user_id,
                target_type="user",
                target_id=user.id,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
                details=details,
            )
        return admin_user_read(user, roles)

    async def revoke_sessions(self, caller: Authorized, user_id: uuid.UUID) -> SessionsRevoked:
        """Revoke every live session of an account: its tokens stop working at once.

        Raises:
            UserNotFound: 404. EscalationRefused: 403.
        """
        user, _ = await self._target(caller, user_id)
        now = self.ctx.clock.now()
        count = await self._end_sessions([user.id], now, "revoked_by_admin")
        await record(
            self.db,
            "admin.sessions_revoked",
            at=now,
            actor_id=caller.user_id,
            target_type="user",
            target_id=user.id,
            details={"sessions_revoked": count},
        )
        return SessionsRevoked(revoked=count)

    async def delete_user(self, caller: Authorized, user_id: uuid.UUID) -> None:
        """Soft-delete an account: it can no longer log in, its sessions end, and it is
        hidden from the default list. Idempotent.

        Raises:
            UserNotFound: 404. EscalationRefused: 403. LastSuperadmin: 409.
        """
        user, roles = await self._target(caller, user_id)
        if user.deleted_at is not None:
            return
        if SUPERADMIN in roles:
            await protect_last_superadmin(self.db, [user.id])
        now = self.ctx.clock.now()
        user.deleted_at = now
        user.updated_at = now
        await self.db.flush()
        await forget_profiles(self.db, self.ctx, user.username)
        count = await self._end_sessions([user.id], now, "account_deleted")
        await record(
            self.db,
            "admin.user_deleted",
            at=now,
            actor_id=caller.user_id,
            target_type="user",
            target_id=user.id,
            before={"deleted_at": None},
            after={"deleted_at": now},
            details={"sessions_revoked": count},
        )

    async def restore_user(self, caller: Authorized, user_id: uuid.UUID) -> AdminUserRead:
        """Undo a soft delete within ``accounts.deleted_retention_days``.

        Raises:
            UserNotFound: 404. UserNotDeleted, RetentionExpired: 409. EscalationRefused: 403.
        """
        user, roles = await self._target(caller, user_id)
        if user.deleted_at is None:
            raise UserNotDeleted("The account is not deleted.")
        now = self.ctx.clock.now()
        retention = timedelta(days=self.ctx.settings.accounts.deleted_retention_days)
        if user.deleted_at + retention <= now:
            raise RetentionExpired("The retention window of this account has passed.")
        deleted_at = user.deleted_at
        user.deleted_at = None
        user.updated_at = now
        await self.db.flush()
        await forget_profiles(self.db, self.ctx, user.username)
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        await record(
            self.db,
            "admin.user_restored",
            at=now,
            actor_id=caller.user_id,
            target_type="user",
            target_id=user.id,
            before={"deleted_at": deleted_at},
            after={"deleted_at": None},
        )
        return admin_user_read(user, roles)

    # --- bulk ----------------------------------------------------------------------------

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
        changed = await self._apply(caller, body, users, roles, role_id)
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
        roles: dict[uuid.UUID, list[str]],
        role_id: uuid.UUID | None,
    ) -> list[uuid.UUID]:
        now = self.ctx.clock.now()
        action = body.action
        events = []
        changed: list[uuid.UUID] = []
        if action in (BulkAction.suspend, BulkAction.activate):
            target = UserStatus.suspended.value if action is BulkAction.suspend else "active"
            changed = [uid for uid, u in users.items() if u.status != target]
            await self.users.set_fields(changed, status=target, updated_at=now)
            await forget_profiles(self.db, self.ctx, *(users[uid].username for uid in changed))
            revoked = 0
            if action is BulkAction.suspend:
                revoked = await self._end_sessions(changed, now, "suspended")
            else:
                self.ctx.principals.forget_users_on_commit(self.db, changed)
            name = (
                "admin.user_suspended" if action is BulkAction.suspend else "admin.user_activated"
            )
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
        elif action is BulkAction.delete:
            changed = [uid for uid, u in users.items() if u.deleted_at is None]
            await self.users.set_fields(changed, deleted_at=now, updated_at=now)
            await forget_profiles(self.db, self.ctx, *(users[uid].username for uid in changed))
            await self._end_sessions(changed, now, "account_deleted")
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
        else:
            assert role_id is not None
            if action is BulkAction.add_role:
                gained = await self.roles.grant(list(users), role_id, now, caller.user_id)
                name = "role.granted"
            else:
                gained = await self.roles.revoke(list(users), role_id)
                name = "role.revoked"
            changed = [uid for uid in users if uid in gained]
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
        self.db.add_all(events)
        await self.db.flush()
        return changed


async def purge_expired(
    db: AsyncSession,
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 500,
    storage: Storage | None = None,
    avatar_sizes: list[int] | None = None,
) -> int:
    """Remove for good, in batches, soft-deleted accounts deleted more than
    ``retention_days`` before ``now`` (sessions, role grants, profiles, preferences and
    file rows cascade; audit events stay). Their stored objects (avatar sizes, files) are
    deleted from ``storage`` once ``db`` commits. One ``admin.user_purged`` event (system
    actor) per account. Returns how many."""
    repo = AdminUserRepository(db)
    cutoff = now - timedelta(days=retention_days)
    total = 0
    while ids := await repo.expired_deleted(cutoff, batch_size):
        if storage is not None:
            await delete_user_objects(db, storage, avatar_sizes or [64, 256, 512], ids)
        await repo.purge(ids)
        db.add_all(
            [
                new_event(
                    "admin.user_purged", at=now, actor_id=None, target_type="user", target_id=uid
                )
                for uid in ids
            ]
        )
        await db.flush()
        total += len(ids)
    return total
