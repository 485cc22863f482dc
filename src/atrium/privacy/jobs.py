"""The ``privacy.exports`` job: build requested exports.

Run by the worker's leader every ``privacy.export_build_interval_seconds``
(:mod:`atrium.core.jobs`). Each export is claimed with a conditional ``UPDATE`` (pending,
or running for longer than ``privacy.export_stale_after_seconds`` — its builder died), so
a pass that overlaps another never builds one twice at once. The ZIP is written to a
temporary file under ``<data_dir>/tmp`` (:mod:`atrium.privacy.archive`, streaming), then
stored as ``exports/<user id>/<export id>.zip``; the row becomes ``ready`` with
``expires_at = now + privacy.export_ttl_hours`` and ``export.ready`` is emitted in the
same transaction. Expired exports lose their row and object in the retention pass
(:mod:`atrium.retention`), the one home of every deletion by age.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy import select

from atrium.account.erasure import erase_accounts
from atrium.activity.service import activity_for_export
from atrium.core.db import unit_of_work
from atrium.core.jobs import JobContext
from atrium.core.storage import Storage, create_storage, delete_objects
from atrium.events.service import emit
from atrium.models import DataExport, ExportStatus, User
from atrium.privacy.archive import ActivityReader, write_archive
from atrium.privacy.repository import ExportRepository

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 3
PER_PASS = 5


def export_key(user_id: uuid.UUID, export_id: uuid.UUID) -> str:
    return f"exports/{user_id}/{export_id}.zip"


async def build_pending_exports(
    ctx: JobContext, storage: Storage, activity: ActivityReader | None = None
) -> int:
    """Build up to :data:`PER_PASS` due exports; returns how many became ready."""
    now = ctx.clock.now()
    stale_before = now - timedelta(seconds=ctx.settings.privacy.export_stale_after_seconds)
    async with unit_of_work(ctx.sessionmaker) as db:
        due = await ExportRepository(db).due(stale_before, PER_PASS)
    built = 0
    for export_id in due:
        async with unit_of_work(ctx.sessionmaker) as db:
            claimed = await ExportRepository(db).claim(export_id, ctx.clock.now(), stale_before)
        if claimed and await build_export(ctx, storage, export_id, activity):
            built += 1
    return built


async def build_export(
    ctx: JobContext,
    storage: Storage,
    export_id: uuid.UUID,
    activity: ActivityReader | None = None,
) -> bool:
    """Build one claimed export and record its outcome; True when it is ready. A failure
    is logged and the export is tried again on a later pass, up to :data:`MAX_ATTEMPTS`
    times, then marked failed (the owner may request a new one)."""
    settings = ctx.settings
    async with unit_of_work(ctx.sessionmaker) as db:
        row = await db.get(DataExport, export_id)
        if row is None:
            return False
        user_id, attempts = row.user_id, row.attempts
    key = export_key(user_id, export_id)
    tmp_dir = settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="export-") as work:
            path = Path(work) / "export.zip"
            async with ctx.sessionmaker() as reader:
                await write_archive(
                    reader,
                    storage,
                    user_id,
                    path,
                    avatar_sizes=settings.avatars.sizes,
                    activity=activity or activity_for_export,
                )
            size = path.stat().st_size
            with path.open("rb") as data:
                await storage.put(key, data, "application/zip")
    except Exception as exc:
        log.exception("export_failed", export_id=str(export_id), attempts=attempts)
        async with unit_of_work(ctx.sessionmaker) as db:
            row = await db.get(DataExport, export_id)
            if row is not None:
                if attempts >= MAX_ATTEMPTS or isinstance(exc, LookupError):
                    row.status = ExportStatus.failed.value
                    row.finished_at = ctx.clock.now()
                    row.expires_at = row.finished_at + timedelta(
                        hours=settings.privacy.export_ttl_hours
                    )
                else:
                    row.status = ExportStatus.pending.value
                row.error = f"{type(exc).__name__}"[:500]
        return False
    async with unit_of_work(ctx.sessionmaker) as db:
        row = await db.get(DataExport, export_id)
        if row is None:  # the account was erased meanwhile: drop the object too
            await delete_objects(storage, [key])
            return False
        now = ctx.clock.now()
        row.status = ExportStatus.ready.value
        row.finished_at = now
        row.expires_at = now + timedelta(hours=settings.privacy.export_ttl_hours)
        row.storage_key = key
        row.size_bytes = size
        row.error = None
        await emit(
            db,
            "export.ready",
            subject=user_id,
            data={"export_id": export_id, "expires_at": row.expires_at},
            at=now,
        )
    log.info("export_ready", export_id=str(export_id), size_bytes=size)
    return True


async def exports_job(ctx: JobContext) -> None:
    """``privacy.exports``: build requested exports. Expired ones are deleted by the
    retention pass (:mod:`atrium.retention`, kind ``exports``), their ZIP after commit."""
    storage = create_storage(ctx.settings)
    try:
        built = await build_pending_exports(ctx, storage)
    finally:
        await storage.close()
    if built:
        log.info("exports_processed", built=built)


async def erase_due_accounts(ctx: JobContext, storage: Storage, *, batch_size: int = 100) -> int:
    """Erase the accounts whose deletion grace period is over, ``batch_size`` per
    transaction (:func:`atrium.account.erasure.erase_accounts`); returns how many."""
    total = 0
    while True:
        async with unit_of_work(ctx.sessionmaker) as db:
            now = ctx.clock.now()
            ids = list(
                (
                    await db.execute(
                        select(User.id)
                        .where(User.deletion_due_at.is_not(None), User.deletion_due_at <= now)
                        .order_by(User.deletion_due_at)
                        .limit(batch_size)
                    )
                ).scalars()
            )
            if ids:
                await erase_accounts(
                    db, storage, ids, now=now, avatar_sizes=ctx.settings.avatars.sizes
                )
        total += len(ids)
        if len(ids) < batch_size:
            return total


async def erase_due_job(ctx: JobContext) -> None:
    """``privacy.erase_due``: accounts whose owner's grace period is over, for good."""
    storage = create_storage(ctx.settings)
    try:
        erased = await erase_due_accounts(ctx, storage)
    finally:
        await storage.close()
    if erased:
        log.info("accounts_erased", count=erased)
