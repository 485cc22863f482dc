"""The signed-in account's self-service (/users/me): basics, password change, sessions, deletion."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.account.deletion import DeletionService
from atrium.audit.service import record
from atrium.auth.exceptions import IncorrectPassword, SessionNotFound
from atrium.auth.principal import Principal, user_read
from atrium.auth.repository import SessionRepository
from atrium.context import AppContext
from atrium.events.service import emit
from atrium.models import User
from atrium.rbac.permissions import SUPERADMIN
from atrium.rbac.service import protect_last_superadmin
from atrium.users.password_policy import check_password
from atrium.users.repository import UserRepository
from atrium.users.schemas import SessionRead, UserRead

log = structlog.get_logger(__name__)


class AccountService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.sessions = SessionRepository(db)

    async def _load(self, principal: Principal) -> User:
        return await UserRepository(self.db).get_caller(principal.user_id)

    async def _check_password(self, user: User, password: str) -> None:
        ok, _ = await self.ctx.hasher.verify(password, user.password_hash)
        if not ok:
            raise IncorrectPassword("The password is incorrect.")

    async def update(self, principal: Principal, changes: dict[str, object]) -> UserRead:
        """Apply ``changes`` (already validated fields) to the caller's account."""
        user = await self._load(principal)
        before = {field: getattr(user, field) for field in changes}
        for field, value in changes.items():
            setattr(user, field, value)
        user.updated_at = self.ctx.clock.now()
        await self.db.flush()
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        if before != changes:
            await record(
                self.db,
                "user.updated",
                at=user.updated_at,
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                before=before,
                after=changes,
            )
            changed = sorted(k for k in changes if before.get(k) != changes[k])
            await emit(
                self.db,
                "user.updated",
                subject=user.id,
                actor=user.id,
                data={"fields": changed},
                at=user.updated_at,
            )
        return user_read(user, principal.user.roles)

    async def change_password(
        self, principal: Principal, current_password: str, new_password: str
    ) -> None:
        """Set a new password and revoke every other session of the account.

        Raises:
            IncorrectPassword: 403, ``current_password`` is wrong.
            WeakPassword: 422, ``new_password`` breaks the policy.
        """
        user = await self._load(principal)
        await self._check_password(user, current_password)
        check_password(
            new_password, email=user.email, settings=self.ctx.settings.auth, field="new_password"
        )
        now = self.ctx.clock.now()
        user.password_hash = await self.ctx.hasher.hash(new_password)
        user.updated_at = now
        await self.db.flush()
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        revoked = await self.sessions.revoke_user_sessions(
            user.id, now, "password_changed", except_session=principal.session_id, actor=user.id
        )
        await emit(self.db, "password.changed", subject=user.id, actor=user.id, at=now)
        self.ctx.principals.revoke_on_commit(self.db, revoked)
        # The "password changed" notice follows from the password.changed event.
        log.info("password_changed", user_id=str(user.id), sessions_revoked=len(revoked))
        await record(
            self.db,
            "user.password_changed",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details={"sessions_revoked": len(revoked)},
        )

    async def delete_account(self, principal: Principal, password: str) -> datetime | None:
        """Schedule the deletion of the caller's account after the grace period
        (``privacy.deletion_grace_days``; :mod:`atrium.account.deletion`): every session,
        API key and trusted device is revoked at once and the account is hidden. Returns
        when it will be erased, or None when it was erased at once (grace period 0).

        Raises:
            IncorrectPassword: 403, ``password`` is wrong.
            LastSuperadmin: 409, the account is the last active superadmin.
        """
        user = await self._load(principal)
        await self._check_password(user, password)
        if SUPERADMIN in principal.user.roles:
            await protect_last_superadmin(self.db, [user.id])
        return await DeletionService(self.db, self.ctx).schedule(principal, user)

    async def list_sessions(self, principal: Principal) -> list[SessionRead]:
        now = self.ctx.clock.now()
        return [
            SessionRead.of(s, current=s.id == principal.session_id)
            for s in await self.sessions.list_active_sessions(principal.user_id, now)
        ]

    async def revoke_session(self, principal: Principal, session_id: uuid.UUID) -> None:
        """Revoke one of the caller's sessions (another user's is 404, as an unknown one).

        Raises:
            SessionNotFound: 404.
        """
        session = await self.sessions.get_user_session(principal.user_id, session_id)
        if session is None or session.revoked_at is not None:
            raise SessionNotFound("No such session.")
        now = self.ctx.clock.now()
        await self.sessions.revoke_session(
            session_id, now, "revoked_by_user", actor=principal.user_id
        )
        self.ctx.principals.revoke_on_commit(self.db, [session_id])
        await record(
            self.db,
            "session.revoked",
            at=now,
            actor_id=principal.user_id,
            target_type="user",
            target_id=principal.user_id,
            details={"session_id": str(session_id)},
        )
