"""The rules of a user's own account: profile basics, password change, deletion, sessions."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.exceptions import IncorrectPassword, SessionNotFound
from atrium.auth.password_policy import check_password
from atrium.auth.principal import Principal, user_read
from atrium.auth.repository import SessionRepository
from atrium.context import AppContext
from atrium.errors import InvalidToken
from atrium.files.cleanup import delete_user_objects
from atrium.models import User
from atrium.profiles.cache import forget_profiles
from atrium.rbac.permissions import SUPERADMIN
from atrium.rbac.service import protect_last_superadmin
from atrium.users.schemas import SessionRead, UserRead
from atrium.verification.service import AccountEmailService

log = structlog.get_logger(__name__)


class UserService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.sessions = SessionRepository(db)

    async def _load(self, principal: Principal) -> User:
        user = await self.db.get(User, principal.user_id)
        if user is None:
            raise InvalidToken("The account no longer exists.")
        return user

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
        check_password(new_password, email=user.email, settings=self.ctx.settings.auth)
        now = self.ctx.clock.now()
        user.password_hash = await self.ctx.hasher.hash(new_password)
        user.updated_at = now
        await self.db.flush()
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        revoked = await self.sessions.revoke_user_sessions(
            user.id, now, "password_changed", except_session=principal.session_id
        )
        self.ctx.principals.revoke_on_commit(self.db, revoked)
        await AccountEmailService(self.db, self.ctx).notify_password_changed(user)
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

    async def delete_account(self, principal: Principal, password: str) -> None:
        """Delete the caller's account and every session of it (rows cascade), and its
        stored objects (avatar sizes, files) once the transaction has committed.

        Raises:
            IncorrectPassword: 403, ``password`` is wrong.
            LastSuperadmin: 409, the account is the last active superadmin.
        """
        user = await self._load(principal)
        await self._check_password(user, password)
        if SUPERADMIN in principal.user.roles:
            await protect_last_superadmin(self.db, [user.id])
        session_ids = await self.sessions.session_ids_of_user(user.id)
        self.ctx.principals.revoke_on_commit(self.db, session_ids)
        # Avatar and file objects go once the deletion has committed (never before).
        await delete_user_objects(
            self.db, self.ctx.storage, self.ctx.settings.avatars.sizes, [user.id]
        )
        await forget_profiles(self.db, self.ctx, user.username)
        await self.db.delete(user)
        await self.db.flush()
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        log.info("account_deleted", user_id=str(user.id))
        await record(
            self.db,
            "user.deleted_self",
            at=self.ctx.clock.now(),
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )

    async def list_sessions(self, principal: Principal) -> list[SessionRead]:
        now = self.ctx.clock.now()
        return [
            SessionRead(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                user_agent=s.user_agent,
                ip_address=s.ip_address,
                current=s.id == principal.session_id,
            )
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
        await self.sessions.revoke_session(session_id, now, "revoked_by_user")
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
