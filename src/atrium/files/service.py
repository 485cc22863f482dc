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
from atrium.core.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
)
from atrium.files.cleanup import delete_objects
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
_CURSOR_KIND = "files:created_desc"
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
                errors=[{"loc": ["body", "file"], "type": "file_type", "msg": str(content_type)}],
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

    async def _visible(self, caller_id: uuid.UUID, file_id: uuid.UUID) -> StoredFile:
        # Grants first (usually one cache read): resolving them opens a connection of its
        # own, which must not wait on this request's transaction (SQLite write lock).
        manages = MANAGE in (await self.ctx.rbac.grants_of(caller_id)).permissions
        stored = await self.repo.get(file_id)
        if stored is None or (stored.owner_id != caller_id and not manages):
            raise FileNotFound("No such file.")
        return stored

    async def get(self, caller_id: uuid.UUID, file_id: uuid.UUID) -> StoredFile:
        """Raises FileNotFound (404): missing, or not the caller's without files:manage."""
        return await self._visible(caller_id, file_id)

    async def list_own(
        self, owner_id: uuid.UUID, *, limit: int | None, cursor: str | None
    ) -> Page[dict[str, object]]:
        """The caller's files, newest first, keyset-paginated.

        Raises:
            InvalidCursor: 422.
        """
        size = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        after = None
        if cursor:
            position = decode_cursor(cursor, kind=_CURSOR_KIND)
            try:
                after = (datetime.fromisoformat(position["at"]), uuid.UUID(position["id"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidCursor("The cursor is not valid.") from exc
        rows = await self.repo.list_of_owner(owner_id, limit=size + 1, after=after)
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            next_cursor = encode_cursor(
                {"k": _CURSOR_KIND, "at": last.created_at.isoformat(), "id": str(last.id)}
            )
        return Page(items=[file_read(r) for r in rows], next_cursor=next_cursor)

    async def download(self, caller_id: uuid.UUID, file_id: uuid.UUID) -> Download:
        """What the content route needs: the row, the disposition, and a presigned URL
        when the storage offers one.

        Raises:
            FileNotFound: 404, as :meth:`get`, or the object is missing from storage.
        """
        stored = await self._visible(caller_id, file_id)
        disposition = content_disposition(stored.filename)
        url = await self.ctx.storage.presigned_url(
            stored.storage_key, content_disposition=disposition, content_type=stored.content_type
        )
        if url is None and not await self.ctx.storage.exists(stored.storage_key):
            log.error("file_object_missing", file_id=str(stored.id))
            raise FileNotFound("No such file.")
        return Download(stored=stored, content_disposition=disposition, redirect_url=url)

    async def delete(self, caller_id: uuid.UUID, file_id: uuid.UUID) -> None:
        """Delete the row now and the object once the transaction has committed.

        Raises:
            FileNotFound: 404, as :meth:`get`.
        """
        stored = await self._visible(caller_id, file_id)
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


async def _delete_object(ctx: AppContext, key: str) -> None:
    await delete_objects(ctx.storage, [key])
