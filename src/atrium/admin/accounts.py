"""Changing one account as an administrator: fields and status, its sessions, soft
delete and restore.

A suspended account cannot log in or refresh, and its sessions are revoked at once
(database rows and principal-cache tombstones). A soft-deleted account (``deleted_at``)
cannot log in, is hidden from the default list, keeps its email, and can be restored
within ``accounts.deleted_retention_days``; ``atrium purge-deleted`` removes it after.
An administrator can only act on accounts whose permissions they hold all of (see
:func:`atrium.rbac.service.managed_account`), and no change may leave the system without
an active superadmin.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.admin.exceptions import RetentionExpired, UserDeleted, UserNotDeleted
from atrium.admin.listing import admin_user_read
from atrium.admin.repository import AdminUserRepository
from atrium.admin.schemas import AdminUserRead, AdminUserUpdate, SessionsRevoked
from atrium.audit.service import record
from atrium.context import AppContext
from atrium.events.service import emit
from atrium.models import User
from atrium.profiles.cache import forget_profiles
from atrium.rbac.authorized import Authorized
from atrium.rbac.permissions import SUPERADMIN
from atrium.rbac.resolver import permission_resolver
from atrium.rbac.service import managed_account, protect_last_superadmin


def _snapshot(user: User) -> dict[str, Any]:
    """The administrable fields of ``user``, for audit before/after."""
    return {
        "status": user.status,
        "email_verified": user.email_verified_at is not None,
        "profile_verified": user.profile_verified,
        "full_name": user.full_name,
        "deleted_at": user.deleted_at,
    }


async def end_sessions(
    db: AsyncSession,
    ctx: AppContext,
    user_ids: list[uuid.UUID],
    now: datetime,
    reason: str,
    actor: uuid.UUID | None = None,
) -> int:
    """Revoke every live session of ``user_ids`` (one statement) and, after the commit,
    drop their cached principals and snapshots; their API keys are checked against the
    database from the commit on. Returns how many sessions ended."""
    revoked = await AdminUserRepository(db).revoke_sessions_of(user_ids, now, reason, actor)
    ctx.principals.revoke_on_commit(db, revoked)
    ctx.principals.forget_users_on_commit(db, user_ids)
    # Their API keys are refused on every node from the commit on (decided by the
    # database, which says suspended or deleted).
    ctx.principals.distrust_api_keys_on_commit(db, user_ids)
    return len(revoked)


class AccountAdmin:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx

    async def _target(self, caller: Authorized, user_id: uuid.UUID) -> tuple[User, list[str]]:
        # The cached graph: on SQLite, loading it through another connection after this
        # request's write transaction has begun would wait on its own lock.
        return await managed_account(
            self.db, caller, user_id, await permission_resolver(self.ctx).graph()
        )

    async def _end_sessions(
        self, user_ids: list[uuid.UUID], now: datetime, reason: str, actor: uuid.UUID
    ) -> int:
        return await end_sessions(self.db, self.ctx, user_ids, now, reason, actor)

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
            revoked = await self._end_sessions([user.id], now, "suspended", caller.user_id)
            details = {"sessions_revoked": revoked}
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
            await self._emit_changes(caller, user, changed, now)
        return admin_user_read(user, roles)

    async def _emit_changes(
        self, caller: Authorized, user: User, changed: list[str], now: datetime
    ) -> None:
        if "status" in changed:
            type_ = "user.suspended" if user.status == "suspended" else "user.reactivated"
            await emit(self.db, type_, subject=user.id, actor=caller.user_id, at=now)
        fields = [k for k in changed if k != "status"]
        if fields:
            await emit(
                self.db,
                "user.updated",
                subject=user.id,
                actor=caller.user_id,
                data={"fields": fields},
                at=now,
            )

    async def revoke_sessions(self, caller: Authorized, user_id: uuid.UUID) -> SessionsRevoked:
        """Revoke every live session of an account: its tokens stop working at once.

        Raises:
            UserNotFound: 404. EscalationRefused: 403.
        """
        user, _ = await self._target(caller, user_id)
        now = self.ctx.clock.now()
        count = await self._end_sessions([user.id], now, "revoked_by_admin", caller.user_id)
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
        count = await self._end_sessions([user.id], now, "account_deleted", caller.user_id)
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
        await emit(
            self.db,
            "user.deleted",
            subject=user.id,
            actor=caller.user_id,
            data={"by_self": False},
            at=now,
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
        # An owner's own deletion is cancelled by the restore too.
        user.deletion_requested_at = None
        user.deletion_due_at = None
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
        await emit(self.db, "user.restored", subject=user.id, actor=caller.user_id, at=now)
        return admin_user_read(user, roles)
