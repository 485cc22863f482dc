"""Every query of data exports: the export rows, and the account's data read page by page
(keyset on the primary key) for the archive, so no list is ever read whole."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from atrium.models import DataExport, ExportStatus, Role, UserRole

M = TypeVar("M")
PAGE = 500


class ExportRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def of_user(self, user_id: uuid.UUID) -> list[DataExport]:
        """The account's exports, newest first (few: one at a time, kept 48 hours)."""
        rows = await self.db.execute(
            select(DataExport)
            .where(DataExport.user_id == user_id)
            .order_by(DataExport.created_at.desc(), DataExport.id.desc())
        )
        return list(rows.scalars())

    async def get(self, export_id: uuid.UUID) -> DataExport | None:
        return await self.db.get(DataExport, export_id)

    async def due(self, stale_before: datetime, limit: int) -> list[uuid.UUID]:
        """Exports to build: pending ones, and running ones whose builder died (started
        before ``stale_before``), oldest first."""
        rows = await self.db.execute(
            select(DataExport.id)
            .where(
                or_(
                    DataExport.status == ExportStatus.pending.value,
                    (DataExport.status == ExportStatus.running.value)
                    & (DataExport.started_at < stale_before),
                )
            )
            .order_by(DataExport.created_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def claim(self, export_id: uuid.UUID, now: datetime, stale_before: datetime) -> bool:
        """Mark the export running for this builder; False when another builder has it."""
        result = await self.db.execute(
            update(DataExport)
            .where(
                DataExport.id == export_id,
                or_(
                    DataExport.status == ExportStatus.pending.value,
                    (DataExport.status == ExportStatus.running.value)
                    & (DataExport.started_at < stale_before),
                ),
            )
            .values(
                status=ExportStatus.running.value,
                started_at=now,
                attempts=DataExport.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def storage_keys_of_users(self, user_ids: Sequence[uuid.UUID]) -> list[str]:
        rows = await self.db.execute(
            select(DataExport.storage_key).where(
                DataExport.user_id.in_(user_ids), DataExport.storage_key.is_not(None)
            )
        )
        return [k for k in rows.scalars() if k]

    # --- the account's data, for the archive ----------------------------------------

    async def role_names(self, user_id: uuid.UUID) -> list[str]:
        rows = await self.db.execute(
            select(Role.name)
            .join(UserRole, UserRole.role_id == Role.id)
            .where(UserRole.user_id == user_id)
            .order_by(Role.name)
        )
        return list(rows.scalars())

    async def pages(
        self, model: type[M], owner: InstrumentedAttribute[Any], user_id: uuid.UUID
    ) -> AsyncIterator[list[M]]:
        """The rows of ``model`` whose ``owner`` column is ``user_id``, :data:`PAGE` at a
        time in primary-key order (keyset: each page is one short query)."""
        key: InstrumentedAttribute[Any] = model.id  # type: ignore[attr-defined]
        after: uuid.UUID | None = None
        while True:
            stmt = select(model).where(owner == user_id).order_by(key).limit(PAGE)
            if after is not None:
                stmt = stmt.where(key > after)
            rows = list((await self.db.execute(stmt)).scalars())
            if not rows:
                return
            yield rows
            self.db.expunge_all()
            if len(rows) < PAGE:
                return
            after = rows[-1].id  # type: ignore[attr-defined]
