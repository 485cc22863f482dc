"""Every query of the authentication domain: sessions and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import ApiKey, AuthSession, RefreshToken, User
from atrium.users.repository import UserRepository, emit_session_revoked


class SessionRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def create_session(self, session: AuthSession, token: RefreshToken) -> None:
        self.db.add(session)
        await self.db.flush()
        self.db.add(token)
        await self.db.flush()

    async def add_refresh_token(self, token: RefreshToken) -> None:
        self.db.add(token)
        await self.db.flush()

    async def get_session_with_user(self, session_id: uuid.UUID) -> tuple[AuthSession, User] | None:
        """One round-trip: the session and its user, for principal loading."""
        row = (
            await self.db.execute(
                select(AuthSession, User)
                .join(User, User.id == AuthSession.user_id)
                .where(AuthSession.id == session_id)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def get_refresh_token(
        self, token_hash: bytes
    ) -> tuple[RefreshToken, AuthSession, User] | None:
        row = (
            await self.db.execute(
                select(RefreshToken, AuthSession, User)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .join(User, User.id == AuthSession.user_id)
                .where(RefreshToken.token_hash == token_hash)
            )
        ).first()
        return (row[0], row[1], row[2]) if row else None

    async def mark_refresh_token_used(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Atomically claim a refresh token; False when another request already used it."""
        result = await self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .returning(RefreshToken.id)
        )
        return result.first() is not None

    async def set_assurance(
        self,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        now: datetime,
        aal: int,
        amr: list[str],
        auth_time: datetime,
    ) -> bool:
        """Record a fresh authentication in a live session of ``user_id``; False when the
        session is revoked, expired or not the user's."""
        result = await self.db.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .values(aal=aal, amr=amr, auth_time=auth_time, last_used_at=now)
            .returning(AuthSession.id)
        )
        return result.first() is not None

    async def retire_refresh_tokens(self, session_id: uuid.UUID) -> None:
        """Delete the session's refresh tokens not yet used (the used ones stay, so that
        presenting one is still detected as reuse)."""
        await self.db.execute(
            delete(RefreshToken).where(
                RefreshToken.session_id == session_id, RefreshToken.used_at.is_(None)
            )
        )

    async def touch_session(self, session_id: uuid.UUID, now: datetime) -> None:
        await self.db.execute(
            update(AuthSession).where(AuthSession.id == session_id).values(last_used_at=now)
        )

    async def revoke_session(
        self, session_id: uuid.UUID, now: datetime, reason: str, *, actor: uuid.UUID | None = None
    ) -> bool:
        """Revoke one session and emit ``session.revoked`` (``actor``: who did it, None for
        the system); False when it was already revoked or does not exist."""
        result = await self.db.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(AuthSession.user_id)
        )
        user_id = result.scalar_one_or_none()
        if user_id is None:
            return False
        await emit_session_revoked(self.db, [(session_id, user_id)], now, reason, actor)
        return True

    async def revoke_user_sessions(
        self,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        except_session: uuid.UUID | None = None,
        actor: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke every live session of ``user_id`` (but ``except_session``); their ids."""
        return await UserRepository(self.db).revoke_sessions(
            [user_id], now, reason, except_session=except_session, actor=actor
        )

    async def list_active_sessions(self, user_id: uuid.UUID, now: datetime) -> list[AuthSession]:
        return list(
            (
                await self.db.execute(
                    select(AuthSession)
                    .where(
                        AuthSession.user_id == user_id,
                        AuthSession.revoked_at.is_(None),
                        AuthSession.expires_at > now,
                    )
                    .order_by(AuthSession.created_at.desc(), AuthSession.id)
                )
            ).scalars()
        )

    async def get_user_session(
        self, user_id: uuid.UUID, session_id: uuid.UUID
    ) -> AuthSession | None:
        return (
            await self.db.execute(
                select(AuthSession).where(
                    AuthSession.id == session_id, AuthSession.user_id == user_id
                )
            )
        ).scalar_one_or_none()

    async def session_ids_of_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            (
                await self.db.execute(select(AuthSession.id).where(AuthSession.user_id == user_id))
            ).scalars()
        )

    async def delete_ended(self, before: datetime) -> int:
        """Delete the sessions (and their refresh tokens, by cascade) that expired or were
        revoked before ``before``; how many. They can never be used again."""
        result = await self.db.execute(
            delete(AuthSession)
            .where(or_(AuthSession.expires_at < before, AuthSession.revoked_at < before))
            .returning(AuthSession.id)
        )
        return len(result.all())


class ApiKeyLookup:
    """The queries of authenticating with an API key."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get_key_with_user(self, key_hash: bytes) -> tuple[ApiKey, User] | None:
        """One round-trip: the key of ``key_hash`` and its owner."""
        row = (
            await self.db.execute(
                select(ApiKey, User)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.key_hash == key_hash)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def touch(self, key_id: uuid.UUID, now: datetime, ip_address: str | None) -> None:
        """Record a use of the key (``last_used_at``, ``last_used_ip``)."""
        await self.db.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=now, last_used_ip=ip_address)
        )
