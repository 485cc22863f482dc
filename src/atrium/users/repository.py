"""Every query of the users domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.errors import InvalidToken
from atrium.events.service import emit
from atrium.models import AuthSession, TrustedDevice, User
from atrium.users.exceptions import EmailTaken


class UserRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get_caller(self, user_id: uuid.UUID) -> User:
        """The signed-in caller's account (the principal's ``user_id``).

        Raises:
            InvalidToken: 401, the account was purged while its token was still valid.
        """
        user = await self.db.get(User, user_id)
        if user is None:
            raise InvalidToken("The account no longer exists.")
        return user

    async def add(self, user: User) -> User:
        """Insert ``user``; the unique index on ``email_normalized`` decides duplicates.

        Raises:
            EmailTaken: another account already has this email (no check-then-insert:
                concurrent registrations of one email all reach the index).
        """
        self.db.add(user)
        try:
            await self.db.flush()
        except IntegrityError as exc:
            raise EmailTaken("An account with this email already exists.") from exc
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.db.get(User, user_id)

    async def get_by_email_key(self, email_key: str) -> User | None:
        return (
            await self.db.execute(select(User).where(User.email_normalized == email_key))
        ).scalar_one_or_none()

    async def record_login(
        self, user_id: uuid.UUID, now: datetime, new_password_hash: str | None
    ) -> None:
        values: dict[str, object] = {"last_login_at": now}
        if new_password_hash is not None:
            values["password_hash"] = new_password_hash
        await self.db.execute(update(User).where(User.id == user_id).values(**values))

    async def delete(self, user_id: uuid.UUID) -> None:
        await self.db.execute(delete(User).where(User.id == user_id))

    async def revoke_sessions(
        self,
        user_ids: Sequence[uuid.UUID],
        now: datetime,
        reason: str,
        *,
        except_session: uuid.UUID | None = None,
        actor: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke every live session of ``user_ids`` (but ``except_session``) in one
        statement, emitting ``session.revoked`` for each; the ids of the sessions revoked.
        The caller drops their cached state after the commit
        (``ctx.principals.revoke_on_commit``)."""
        if not user_ids:
            return []
        stmt = (
            update(AuthSession)
            .where(AuthSession.user_id.in_(list(user_ids)), AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(AuthSession.id, AuthSession.user_id)
            .execution_options(synchronize_session=False)
        )
        if except_session is not None:
            stmt = stmt.where(AuthSession.id != except_session)
        revoked = [(sid, uid) for sid, uid in (await self.db.execute(stmt)).all()]
        await emit_session_revoked(self.db, revoked, now, reason, actor)
        return [sid for sid, _ in revoked]

    async def revoke_trusted_devices(self, user_id: uuid.UUID) -> int:
        """Forget every device trusted to skip the account's second factor (a password
        reset or any change of the factors); the number removed."""
        result = await self.db.execute(
            delete(TrustedDevice)
            .where(TrustedDevice.user_id == user_id)
            .returning(TrustedDevice.id)
        )
        return len(result.all())

    async def revoke_aal1_sessions(
        self, user_id: uuid.UUID, now: datetime, reason: str, *, except_session: uuid.UUID
    ) -> list[uuid.UUID]:
        """Revoke the account's live sessions at aal1 (but ``except_session``): when the
        account turns MFA on, sessions opened with one factor must authenticate again."""
        stmt = (
            update(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.aal < 2,
                AuthSession.id != except_session,
            )
            .values(revoked_at=now, revoked_reason=reason)
            .returning(AuthSession.id, AuthSession.user_id)
            .execution_options(synchronize_session=False)
        )
        revoked = [(sid, uid) for sid, uid in (await self.db.execute(stmt)).all()]
        await emit_session_revoked(self.db, revoked, now, reason, user_id)
        return [sid for sid, _ in revoked]


async def emit_session_revoked(
    db: AsyncSession,
    sessions: Sequence[tuple[uuid.UUID, uuid.UUID]],
    now: datetime,
    reason: str,
    actor: uuid.UUID | None,
) -> None:
    """``session.revoked`` for each ``(session id, user id)`` revoked in ``db``'s unit of
    work (the one place every revocation passes)."""
    for session_id, user_id in sessions:
        await emit(
            db,
            "session.revoked",
            subject=session_id,
            actor=actor,
            data={"user_id": user_id, "reason": reason},
            at=now,
        )
