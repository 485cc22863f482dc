"""Imports started through the API: a status row, the upload kept on disk, a background run.

``POST /api/v1/admin/users/import`` stores the upload under ``<data_dir>/imports/``,
creates a ``user_import`` row (``pending``) and answers 202; once the response is sent the
import runs on that node (:func:`run_job`) with an engine of its own without statement
bounds, and writes its outcome to the row, which any node can then answer
(``GET /api/v1/admin/users/imports/{id}``). The upload is deleted when the run ends.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import anyio
import structlog
from fastapi import UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core.db import create_engine, unit_of_work
from atrium.imports.exceptions import EmptyImport, ImportNotFound
from atrium.imports.formats import ImportFormat
from atrium.imports.service import ImportOutcome, import_users, refresh_caches
from atrium.models import ImportStatus, UserImport

log = structlog.get_logger(__name__)
_CHUNK = 1 << 20


def upload_path(ctx: AppContext, import_id: uuid.UUID) -> Path:
    return ctx.settings.data_dir / "imports" / f"{import_id}.upload"


async def create_job(
    db: AsyncSession,
    ctx: AppContext,
    upload: UploadFile,
    fmt: ImportFormat,
    *,
    dry_run: bool,
    actor_id: uuid.UUID,
) -> UserImport:
    """Keep the upload and record a pending import.

    Raises:
        EmptyImport: the file has no bytes.
    """
    job = UserImport(
        id=uuid.uuid4(),
        format=fmt.value,
        dry_run=dry_run,
        status=ImportStatus.pending.value,
        requested_by=actor_id,
        created_at=ctx.clock.now(),
        records=0,
        created=0,
        updated=0,
        error_count=0,
        errors=[],
    )
    path = upload_path(ctx, job.id)
    await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    size = 0
    async with await anyio.open_file(path, "wb") as out:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            await out.write(chunk)
    if size == 0:
        await anyio.Path(path).unlink(missing_ok=True)
        raise EmptyImport("The uploaded file has no content.")
    db.add(job)
    return job


async def get_job(db: AsyncSession, import_id: uuid.UUID) -> UserImport:
    """Raises: ImportNotFound."""
    job = await db.get(UserImport, import_id)
    if job is None:
        raise ImportNotFound("No import with this id.")
    return job


async def run_job(ctx: AppContext, import_id: uuid.UUID) -> None:
    """Run a pending import and record its outcome (never raises: a crash is recorded as
    a failed import with one error)."""
    path = upload_path(ctx, import_id)
    async with unit_of_work(ctx.sessionmaker) as db:
        job = await get_job(db, import_id)
        job.status = ImportStatus.running.value
        job.started_at = ctx.clock.now()
        fmt, dry_run, actor = ImportFormat(job.format), job.dry_run, job.requested_by
    outcome: ImportOutcome
    engine = create_engine(ctx.settings, statement_timeouts=False)
    try:
        with path.open(encoding="utf-8-sig", newline="") as source:
            outcome = await import_users(
                engine,
                source,
                fmt,
                now=ctx.clock.now(),
                dry_run=dry_run,
                actor_id=actor,
                import_id=import_id,
            )
    except Exception:
        log.exception("user_import_crashed", import_id=str(import_id))
        outcome = ImportOutcome(dry_run=dry_run)
        outcome.add_error(0, None, None, "the import stopped on an internal error (see the logs)")
    finally:
        await engine.dispose()
        with contextlib.suppress(OSError):
            path.unlink()
    await refresh_caches(ctx.cache, outcome)
    async with unit_of_work(ctx.sessionmaker) as db:
        job = await get_job(db, import_id)
        job.status = (ImportStatus.succeeded if outcome.ok else ImportStatus.failed).value
        job.finished_at = ctx.clock.now()
        job.records = outcome.records
        job.created = outcome.created
        job.updated = outcome.updated
        job.error_count = outcome.error_count
        job.errors = outcome.errors
    log.info(
        "user_import_finished",
        import_id=str(import_id),
        status=job.status,
        records=outcome.records,
        errors=outcome.error_count,
        seconds=round(outcome.seconds, 3),
    )
