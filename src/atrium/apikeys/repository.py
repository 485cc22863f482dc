"""Every query of the API key domain (authentication's lookup is auth.repository's)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import ApiKey


class ApiKeyRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, key: ApiKey) -> None:
        self.db.add(key)
        await self.db.flush()

    async def count_unrevoked(self, user_id: uuid.UUID) -> int:
        """How many keys of ``user_id`` are not revoked (expired ones included: they are
        listed until their owner deletes them)."""
        count = await self.db.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        )
        return int(count or 0)

    async def list_unrevoked(self, user_id: uuid.UUID) -> list[ApiKey]:
        """The keys of ``user_id`` that are not revoked, newest first (at most
        ``api_keys.max_per_user`` of them)."""
        return list(
            (
                await self.db.execute(
                    select(ApiKey)
                    .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                    .order_by(ApiKey.created_at.desc(), ApiKey.id)
                )
            ).scalars()
        )

    async def revoke(
        self, user_id: uuid.UUID, key_id: uuid.UUID, now: datetime, reason: str
    ) -> ApiKey | None:
        """Revoke one unrevoked key of ``user_id``; None when there is no such key."""
        row = (
            await self.db.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
                .returning(ApiKey.id, ApiKey.name, ApiKey.prefix)
            )
        ).first()
        if row is None:
            return None
        return ApiKey(id=row[0], user_id=user_id, name=row[1], prefix=row[2])
