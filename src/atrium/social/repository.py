"""Every query of social login: stored providers, linked identities, flow tickets."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import IdentityProvider, OAuthTicket, User, UserIdentity


class ProviderRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def list(self) -> Sequence[IdentityProvider]:
        return (
            await self.db.scalars(select(IdentityProvider).order_by(IdentityProvider.slug))
        ).all()

    async def get(self, slug: str) -> IdentityProvider | None:
        return await self.db.scalar(select(IdentityProvider).where(IdentityProvider.slug == slug))

    async def add(self, row: IdentityProvider) -> bool:
        """Insert; False when the slug is taken (the unique index decides)."""
        try:
            async with self.db.begin_nested():
                self.db.add(row)
                await self.db.flush()
        except IntegrityError:
            return False
        return True

    async def delete(self, row: IdentityProvider) -> None:
        await self.db.delete(row)
        await self.db.flush()


class IdentityRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def find(self, issuer: str, subject: str) -> UserIdentity | None:
        return await self.db.scalar(
            select(UserIdentity).where(
                UserIdentity.issuer == issuer, UserIdentity.subject == subject
            )
        )

    async def lock_owner(self, user_id: uuid.UUID) -> None:
        """Lock the account's row (PostgreSQL ``FOR UPDATE``), so that two concurrent
        unlinks cannot both see another identity left and remove the last two."""
        await self.db.execute(select(User.id).where(User.id == user_id).with_for_update())

    async def of_user(self, user_id: uuid.UUID) -> Sequence[UserIdentity]:
        return (
            await self.db.scalars(
                select(UserIdentity)
                .where(UserIdentity.user_id == user_id)
                .order_by(UserIdentity.created_at, UserIdentity.id)
            )
        ).all()

    async def count_of_user(self, user_id: uuid.UUID) -> int:
        return int(
            await self.db.scalar(
                select(func.count())
                .select_from(UserIdentity)
                .where(UserIdentity.user_id == user_id)
            )
            or 0
        )

    async def add(self, identity: UserIdentity) -> bool:
        """Insert; False when this issuer + subject is linked already (unique index)."""
        try:
            async with self.db.begin_nested():
                self.db.add(identity)
                await self.db.flush()
        except IntegrityError:
            return False
        return True

    async def touch(self, identity_id: uuid.UUID, now: datetime, email: str | None) -> None:
        await self.db.execute(
            update(UserIdentity)
            .where(UserIdentity.id == identity_id)
            .values(last_login_at=now, email=email)
        )

    async def delete(self, identity_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result = await self.db.execute(
            delete(UserIdentity)
            .where(UserIdentity.id == identity_id, UserIdentity.user_id == user_id)
            .returning(UserIdentity.id)
        )
        return result.first() is not None


class TicketRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(
        self, kind: str, digest: bytes, payload: dict[str, Any], now: datetime, ttl: int
    ) -> None:
        self.db.add(
            OAuthTicket(
                id=uuid.uuid4(),
                kind=kind,
                digest=digest,
                payload=payload,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
        await self.db.flush()

    async def use(self, kind: str, digest: bytes, now: datetime) -> dict[str, Any] | None:
        """Claim a live ticket once: of any number of concurrent uses, one gets its
        payload; the others (and any later use) get None."""
        result = await self.db.execute(
            update(OAuthTicket)
            .where(
                OAuthTicket.digest == digest,
                OAuthTicket.kind == kind,
                OAuthTicket.used_at.is_(None),
                OAuthTicket.expires_at > now,
            )
            .values(used_at=now)
            .returning(OAuthTicket.payload)
        )
        row = result.first()
        return dict(row[0]) if row is not None else None

    async def peek(self, kind: str, digest: bytes, now: datetime) -> dict[str, Any] | None:
        """A live ticket's payload without using it (to show a confirmation page)."""
        payload = await self.db.scalar(
            select(OAuthTicket.payload).where(
                OAuthTicket.digest == digest,
                OAuthTicket.kind == kind,
                OAuthTicket.used_at.is_(None),
                OAuthTicket.expires_at > now,
            )
        )
        return dict(payload) if payload is not None else None

    async def purge_expired(self, before: datetime) -> None:
        await self.db.execute(delete(OAuthTicket).where(OAuthTicket.expires_at < before))

    # --- queued imports of a provider's picture (atrium.account.avatar_import) ----------

    async def queue_avatar_import(self, user_id: uuid.UUID, url: str, now: datetime) -> None:
        """Queue the import of ``url`` as ``user_id``'s avatar: a ticket of kind
        ``avatar`` (a random digest; nothing secret), live for a day."""
        await self.add(
            AVATAR_IMPORT,
            secrets.token_bytes(32),
            {"user_id": str(user_id), "url": url[:2048]},
            now,
            AVATAR_IMPORT_TTL_SECONDS,
        )

    async def claim_avatar_imports(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` queued imports (each is handed out once, whichever node
        asks; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL); their payloads, oldest first."""
        query = (
            select(OAuthTicket.id)
            .where(
                OAuthTicket.kind == AVATAR_IMPORT,
                OAuthTicket.used_at.is_(None),
                OAuthTicket.expires_at > now,
            )
            .order_by(OAuthTicket.created_at)
            .limit(limit)
        )
        if self.db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list((await self.db.execute(query)).scalars())
        if not ids:
            return []
        result = await self.db.execute(
            update(OAuthTicket)
            .where(OAuthTicket.id.in_(ids), OAuthTicket.used_at.is_(None))
            .values(used_at=now)
            .returning(OAuthTicket.payload)
        )
        return [dict(row[0]) for row in result]


AVATAR_IMPORT = "avatar"
AVATAR_IMPORT_TTL_SECONDS = 24 * 3600
