"""Exports of an account's data: request, list, download (GDPR arts. 15 and 20).

A request writes a ``pending`` :class:`DataExport` row and its audit event; the worker's
leader builds the ZIP (:mod:`atrium.privacy.jobs`), stores it and emits ``export.ready``
(the ``notifications`` consumer sends the notice and the email with the download link).
One export at a time per account: a partial unique index on ``(user_id)`` over pending and
running rows, so two concurrent requests cannot both start one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.context import AppContext
from atrium.models import DataExport, ExportStatus, User
from atrium.privacy.exceptions import (
    ExportExpired,
    ExportInProgress,
    ExportNotFound,
    ExportNotReady,
)
from atrium.privacy.repository import ExportRepository
from atrium.privacy.schemas import ExportRead
from atrium.users.exceptions import UserNotFound

DOWNLOAD_PATH = "/api/v1/users/me/exports/{id}/download"
ADMIN_DOWNLOAD_PATH = "/api/v1/admin/users/{user_id}/exports/{id}/download"


def export_read(row: DataExport, *, admin: bool = False) -> ExportRead:
    read = ExportRead.model_validate(row)
    if row.status == ExportStatus.ready.value:
        path = ADMIN_DOWNLOAD_PATH if admin else DOWNLOAD_PATH
        read.download_url = path.format(id=row.id, user_id=row.user_id)
    return read


@dataclass(frozen=True)
class Download:
    """What the download route streams: the storage key, the attachment's name, its size."""

    storage_key: str
    filename: str
    size_bytes: int


class ExportService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = ExportRepository(db)

    async def request(
        self, user_id: uuid.UUID, *, actor_id: uuid.UUID, admin: bool = False
    ) -> ExportRead:
        """Ask for an export of ``user_id``'s data (by the account itself, or an
        administrator ``actor_id``); audited.

        Raises:
            UserNotFound: 404, no such account (or it is being erased).
            ExportInProgress: 409, an export of the account is pending or running.
        """
        user = await self.db.get(User, user_id)
        if user is None or user.deleted_at is not None:
            raise UserNotFound("No such account.")
        now = self.ctx.clock.now()
        row = DataExport(
            id=uuid.uuid4(),
            user_id=user_id,
            requested_by=actor_id,
            status=ExportStatus.pending.value,
            attempts=0,
            created_at=now,
        )
        try:
            async with self.db.begin_nested():
                self.db.add(row)
                await self.db.flush()
        except IntegrityError as exc:
            raise ExportInProgress(
                "An export of this account is already being made; wait for it to be ready."
            ) from exc
        await record(
            self.db,
            "user.export_requested",
            at=now,
            actor_id=actor_id,
            target_type="user",
            target_id=user_id,
            details={"export_id": str(row.id), "by_admin": admin},
        )
        return export_read(row, admin=admin)

    async def list_of(self, user_id: uuid.UUID, *, admin: bool = False) -> list[ExportRead]:
        """The account's exports still on record, newest first (at most one in progress,
        each kept ``privacy.export_ttl_hours``)."""
        return [export_read(r, admin=admin) for r in await self.repo.of_user(user_id)]

    async def download(
        self, user_id: uuid.UUID, export_id: uuid.UUID, *, actor_id: uuid.UUID
    ) -> Download:
        """The ready export ``export_id`` of ``user_id`` (another account's is 404, as an
        unknown one); the download is audited.

        Raises:
            ExportNotFound: 404.
            ExportNotReady: 409, still pending or running, or failed.
            ExportExpired: 410, its lifetime is over (it is purged soon).
        """
        row = await self.repo.get(export_id)
        if row is None or row.user_id != user_id:
            raise ExportNotFound("No such export.")
        now = self.ctx.clock.now()
        if row.status != ExportStatus.ready.value or row.storage_key is None:
            raise ExportNotReady(f"The export is {row.status}.")
        if row.expires_at is None or row.expires_at <= now:
            raise ExportExpired("The export has expired; request a new one.")
        await record(
            self.db,
            "user.export_downloaded",
            at=now,
            actor_id=actor_id,
            target_type="user",
            target_id=user_id,
            details={"export_id": str(export_id)},
        )
        stamp = row.created_at.strftime("%Y%m%d-%H%M%S")
        return Download(row.storage_key, f"atrium-export-{stamp}.zip", row.size_bytes or 0)
