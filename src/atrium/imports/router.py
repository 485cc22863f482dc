"""HTTP routes of user imports: /api/v1/admin/users/import and /imports/{id}."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Query, Response, UploadFile, status

from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.imports.dependencies import UsersImport
from atrium.imports.exceptions import EmptyImport, ImportNotFound
from atrium.imports.formats import ImportFormat
from atrium.imports.jobs import create_job, get_job, run_job
from atrium.imports.schemas import ImportRead
from atrium.rbac.exceptions import PermissionDenied

router = APIRouter(prefix="/admin/users", tags=["admin: users"])

_AUTH = (NotAuthenticated, InvalidToken, PermissionDenied)


@router.post(
    "/import",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportRead,
    responses=problem_responses(*_AUTH, EmptyImport, ValidationFailed),
)
async def start_import(
    file: Annotated[UploadFile, File(description="The file to import (multipart field `file`).")],
    caller: UsersImport,
    db: DbSession,
    ctx: Ctx,
    background: BackgroundTasks,
    response: Response,
    fmt: Annotated[
        ImportFormat, Query(alias="format", description="Format of the file (docs/import.md).")
    ] = ImportFormat.csv,
    dry_run: Annotated[bool, Query(description="Validate and count, change nothing.")] = False,
) -> ImportRead:
    """Import accounts from a file, all or nothing, in the background; poll the returned
    import (`Location`) for its outcome and errors by line."""
    job = await create_job(db, ctx, file, fmt, dry_run=dry_run, actor_id=caller.user_id)
    background.add_task(run_job, ctx, job.id)
    response.headers["Location"] = f"/api/v1/admin/users/imports/{job.id}"
    return ImportRead.model_validate(job)


@router.get(
    "/imports/{import_id}",
    response_model=ImportRead,
    responses=problem_responses(*_AUTH, ImportNotFound, ValidationFailed),
)
async def read_import(import_id: uuid.UUID, _: UsersImport, db: DbSession) -> ImportRead:
    """The status of an import, with its counts and errors."""
    return ImportRead.model_validate(await get_job(db, import_id))
