"""Every query of the authentication domain: sessions and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import AuthSession, RefreshToken, User


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

    async def touch_session(self, session_id: uuid.UUID, now: datetime) -> None:
        await self.db.execute(
            update(AuthSession).where(AuthSession.id == session_id).values(last_used_at=now)
        )

    async def revoke_session(self, session_id: uuid.UUID, now: datetime, reason: str) -> bool:
        """Revoke one session; False when it was already revoked or does not exist."""
        result = await self.db.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(AuthSession.id)
        )
        return result.first() is not None

    async def revoke_user_sessions(
        self,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        except_session: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """Revoke every live session of ``user_id`` (but ``except_session``); their ids."""
        stmt = (
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(AuthSession.id)
        )
        if except_session is not None:
            stmt = stmt.where(AuthSession.id != except_session)
        return list((await self.db.execute(stmt)).scalars())

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
