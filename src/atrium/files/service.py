"""The rules of user files: upload (size, sniffed type, malware scan), list, read,
download and delete. Owner-only unless the caller holds ``files:manage``; another user's
file answers 404 like a missing one."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import anyio
import filetype
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from atrium.audit.service import record
from atrium.context import AppContext
from atrium.core.db import after_commit, after_rollback
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, CursorCodec, CursorField, Page
from atrium.core.storage import delete_objects
from atrium.events.service import emit
from atrium.files.exceptions import (
    EmptyFile,
    FileNotFound,
    FileTooLarge,
    FileTypeNotAllowed,
    MalwareDetected,
    ScannerUnavailable,
)
from atrium.files.naming import clean_filename, content_disposition
from atrium.files.repository import FileRepository
from atrium.files.scanner import ScanError, scan_stream
from atrium.models import StoredFile

log = structlog.get_logger(__name__)

_SNIFF_BYTES = 8192
_CURSOR = CursorCodec("files:created_desc", at=CursorField.DATETIME, id=CursorField.UUID)
MANAGE = "files:manage"


@dataclass(frozen=True)
class Measured:
    size: int
    sha256: str
    head: bytes


def measure(data: BinaryIO, limit: int) -> Measured:
    """Size, SHA-256 and first bytes of ``data`` (blocking: run in a thread), reading at
    most ``limit + 1`` bytes.

    Raises:
        FileTooLarge: 413, more than ``limit`` bytes.
    """
    data.seek(0)
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := data.read(64 * 1024):
        if len(head) < _SNIFF_BYTES:
            head += chunk[: _SNIFF_BYTES - len(head)]
        size += len(chunk)
        if size > limit:
            raise FileTooLarge(f"The file is larger than {limit} bytes.")
        digest.update(chunk)
    data.seek(0)
    return Measured(size=size, sha256=digest.hexdigest(), head=head)


def sniff(head: bytes) -> str | None:
    """The media type of content starting with ``head``, from its magic numbers
    (``filetype``), or None when unrecognised."""
    kind = filetype.guess(head)
    return str(kind.mime) if kind is not None else None


def file_read(stored: StoredFile) -> dict[str, object]:
    return {
        "id": stored.id,
        "filename": stored.filename,
        "content_type": stored.content_type,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "created_at": stored.created_at,
        "content_url": f"/api/v1/files/{stored.id}/content",
    }


@dataclass(frozen=True)
class Download:
    stored: StoredFile
    content_disposition: str
    redirect_url: str | None


class FileService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = FileRepository(db)

    async def upload(self, owner_id: uuid.UUID, upload: UploadFile) -> StoredFile:
        """Store an uploaded file for ``owner_id``.

        Order: per-account rate limit, size (413 past ``files.max_bytes``), type sniffed
        from the content and checked against ``files.allowed_types`` (415), malware scan
        when ``files.clamd_host`` is set, then the object and its row. The object is
        deleted again if the transaction rolls back.

        Raises:
            RateLimited: 429. FileTooLarge: 413. EmptyFile: 422. FileTypeNotAllowed: 415.
            MalwareDetected: 422 (audited). ScannerUnavailable: 503. StorageError: 503.
        """
        settings = self.ctx.settings.files
        await self.ctx.ratelimiter.hit("uploads", str(owner_id))
        data = upload.file
        measured = await anyio.to_thread.run_sync(measure, data, settings.max_bytes)
        if measured.size == 0:
            raise EmptyFile("The file is empty.")
        content_type = sniff(measured.head)
        if content_type is None or content_type not in settings.allowed_types:
            raise FileTypeNotAllowed(
                f"Allowed types: {', '.join(settings.allowed_types)}.",
                errors=[
                    {
                        "loc": ["body", "file"],
                        "type": "file_type",
                        "msg": f"{content_type} is not an allowed type"
                        if content_type
                        else "the type of the content is not recognised",
                    }
                ],
            )
        filename = clean_filename(upload.filename)
        now = self.ctx.clock.now()
        if settings.clamd_host:
            await self._scan(owner_id, data, filename, measured, now)
        file_id = uuid.uuid4()
        key = f"files/{owner_id}/{file_id}"

        async def discard() -> None:
            await _delete_object(self.ctx, key)

        after_rollback(self.db, discard)
        await self.ctx.storage.put(key, data, content_type)
        stored = await self.repo.add(
            StoredFile(
                id=file_id,
                owner_id=owner_id,
                filename=filename,
                content_type=content_type,
                size_bytes=measured.size,
                sha256=measured.sha256,
                storage_key=key,
                created_at=now,
            )
        )
        await record(
            self.db,
            "file.uploaded",
            at=now,
            actor_id=owner_id,
            target_type="file",
            target_id=file_id,
            details={"content_type": content_type, "size_bytes": measured.size},
        )
        await emit(
            self.db,
            "file.uploaded",
            subject=file_id,
            actor=owner_id,
            data={"owner_id": owner_id, "content_type": content_type, "size_bytes": measured.size},
            at=now,
        )
        return stored

    async def _scan(
        self,
        owner_id: uuid.UUID,
        data: BinaryIO,
        filename: str,
        measured: Measured,
        now: datetime,
    ) -> None:
        settings = self.ctx.settings.files
        try:
            result = await scan_stream(
                data,
                host=settings.clamd_host or "",
                port=settings.clamd_port,
                seconds=settings.clamd_timeout_seconds,
            )
        except ScanError as exc:
            log.error("malware_scan_failed", error=str(exc))
            raise ScannerUnavailable("The malware scanner is not reachable.") from exc
        finally:
            await anyio.to_thread.run_sync(data.seek, 0)
        if not result.clean:
            log.warning("malware_detected", user_id=str(owner_id), signature=result.signature)
            await record(
                self.db,
                "file.malware_detected",
                at=now,
                actor_id=owner_id,
                target_type="user",
                target_id=owner_id,
                details={
                    "signature": result.signature,
                    "filename": filename,
                    "sha256": measured.sha256,
                    "size_bytes": measured.size,
                },
            )
            raise MalwareDetected("The file contains malware and was refused.")

    async def _visible(
        self, caller_id: uuid.UUID, file_id: uuid.UUID, scopes: frozenset[str] | None
    ) -> StoredFile:
        # Grants first (usually one cache read): resolving them opens a connection of its
        # own, which must not wait on this request's transaction (SQLite write lock).
        manages = MANAGE in (await self.ctx.rbac.grants_of(caller_id)).permissions
        # An API key (``scopes`` not None) manages files only with the scope too.
        manages = manages and (scopes is None or MANAGE in scopes)
        stored = await self.repo.get(file_id)
        if stored is None or (stored.owner_id != caller_id and not manages):
            raise FileNotFound("No such file.")
        return stored

    async def get(
        self, caller_id: uuid.UUID, file_id: uuid.UUID, scopes: frozenset[str] | None = None
    ) -> StoredFile:
        """Raises FileNotFound (404): missing, or not the caller's without files:manage."""
        return await self._visible(caller_id, file_id, scopes)

    async def list_own(
        self, owner_id: uuid.UUID, *, limit: int | None, cursor: str | None
    ) -> Page[dict[str, object]]:
        """The caller's files, newest first, keyset-paginated.

        Raises:
            InvalidCursor: 400.
        """
        size = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        after = None
        if cursor:
            position = _CURSOR.decode(cursor)
            after = (position["at"], position["id"])
        rows = await self.repo.list_of_owner(owner_id, limit=size + 1, after=after)
        return _CURSOR.page(rows, size, lambda r: {"at": r.created_at, "id": r.id}, file_read)

    async def download(
        self, caller_id: uuid.UUID, file_id: uuid.UUID, scopes: frozenset[str] | None = None
    ) -> Download:
        """What the content route needs: the row, the disposition, and a presigned URL
        when the storage offers one.

        Raises:
            FileNotFound: 404, as :meth:`get`, or the object is missing from storage.
        """
        stored = await self._visible(caller_id, file_id, scopes)
        disposition = content_disposition(stored.filename)
        url = await self.ctx.storage.presigned_url(
            stored.storage_key, content_disposition=disposition, content_type=stored.content_type
        )
        if url is None and not await self.ctx.storage.exists(stored.storage_key):
            log.error("file_object_missing", file_id=str(stored.id))
            raise FileNotFound("No such file.")
        return Download(stored=stored, content_disposition=disposition, redirect_url=url)

    async def delete(
        self, caller_id: uuid.UUID, file_id: uuid.UUID, scopes: frozenset[str] | None = None
    ) -> None:
        """Delete the row now and the object once the transaction has committed.

        Raises:
            FileNotFound: 404, as :meth:`get`.
        """
        stored = await self._visible(caller_id, file_id, scopes)
        key = stored.storage_key
        await self.repo.delete(stored)

        async def drop() -> None:
            await _delete_object(self.ctx, key)

        after_commit(self.db, drop)
        await record(
            self.db,
            "file.deleted",
            at=self.ctx.clock.now(),
            actor_id=caller_id,
            target_type="file",
            target_id=stored.id,
            details={"owner_id": str(stored.owner_id)},
        )
        await emit(
            self.db,
            "file.deleted",
            subject=stored.id,
            actor=caller_id,
            data={"owner_id": stored.owner_id},
            at=self.ctx.clock.now(),
        )


async def _delete_object(ctx: AppContext, key: str) -> None:
    await delete_objects(ctx.storage, [key])
