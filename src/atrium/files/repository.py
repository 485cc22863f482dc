"""Every query of user files."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import StoredFile


class FileRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, file_id: uuid.UUID) -> StoredFile | None:
        return await self.db.get(StoredFile, file_id)

    async def add(self, stored: StoredFile) -> StoredFile:
        self.db.add(stored)
        await self.db.flush()
        return stored

    async def delete(self, stored: StoredFile) -> None:
        await self.db.delete(stored)
        await self.db.flush()

    async def list_of_owner(
        self,
        owner_id: uuid.UUID,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[StoredFile]:
        """``owner_id``'s files, newest first, ``limit`` of them after the keyset position
        ``after`` (created_at, id); uses ix_stored_file_owner_id_created_at_id."""
        query = select(StoredFile).where(StoredFile.owner_id == owner_id)
        if after is not None:
            at, last_id = after
            query = query.where(
                or_(
                    StoredFile.created_at < at,
                    and_(StoredFile.created_at == at, StoredFile.id < last_id),
                )
            )
        query = query.order_by(StoredFile.created_at.desc(), StoredFile.id.desc()).limit(limit)
        return list((await self.db.execute(query)).scalars())

    async def storage_keys_of_owners(self, owner_ids: list[uuid.UUID]) -> list[str]:
        rows = await self.db.execute(
            select(StoredFile.storage_key).where(StoredFile.owner_id.in_(owner_ids))
        )
        return list(rows.scalars())
