"""HTTP routes of data exports: /api/v1/users/me/exports* (the owner, signed in with a
session: never with an API key) and /api/v1/admin/users/{user_id}/exports* (permission
``users:export``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse

from atrium.auth.dependencies import SessionPrincipal
from atrium.auth.exceptions import ApiKeyNotAllowed
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.files.naming import content_disposition
from atrium.privacy.dependencies import UsersExport
from atrium.privacy.exceptions import (
    ExportExpired,
    ExportInProgress,
    ExportNotFound,
    ExportNotReady,
)
from atrium.privacy.schemas import ExportRead
from atrium.privacy.service import Download, ExportService
from atrium.rbac.exceptions import PermissionDenied
from atrium.users.exceptions import UserNotFound

router = APIRouter(prefix="/users/me/exports", tags=["users"])
admin_router = APIRouter(prefix="/admin/users/{user_id}/exports", tags=["admin: users"])

_OWNER = (NotAuthenticated, InvalidToken, ApiKeyNotAllowed)
_ADMIN = (NotAuthenticated, InvalidToken, PermissionDenied, UserNotFound)
_DOWNLOAD = (ExportNotFound, ExportNotReady, ExportExpired, ValidationFailed)


async def _send(ctx: Ctx, download: Download) -> Response:
    disposition = content_disposition(download.filename)
    url = await ctx.storage.presigned_url(
        download.storage_key, content_disposition=disposition, content_type="application/zip"
    )
    if url is not None:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        ctx.storage.stream(download.storage_key),
        media_type="application/zip",
        headers={
            "Content-Disposition": disposition,
            "Content-Length": str(download.size_bytes),
            "Cache-Control": "private, no-store",
        },
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportRead,
    responses=problem_responses(*_OWNER, ExportInProgress, UserNotFound),
)
async def request_export(
    principal: SessionPrincipal, db: DbSession, ctx: Ctx, response: Response
) -> ExportRead:
    """Ask for a ZIP of all your data; an email and a notice say when it is ready."""
    export = await ExportService(db, ctx).request(principal.user_id, actor_id=principal.user_id)
    response.headers["Location"] = f"/api/v1/users/me/exports/{export.id}"
    return export


@router.get("", response_model=list[ExportRead], responses=problem_responses(*_OWNER))
async def list_exports(principal: SessionPrincipal, db: DbSession, ctx: Ctx) -> list[ExportRead]:
    """Your exports still on record (kept 48 hours), newest first."""
    return await ExportService(db, ctx).list_of(principal.user_id)


@router.get(
    "/{export_id}/download",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The ZIP."},
        307: {"description": "Redirect to a time-limited storage URL (S3 presigning)."},
        **problem_responses(*_OWNER, *_DOWNLOAD),
    },
)
async def download_export(
    export_id: uuid.UUID, principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Download one of your ready exports (the ZIP)."""
    download = await ExportService(db, ctx).download(
        principal.user_id, export_id, actor_id=principal.user_id
    )
    return await _send(ctx, download)


@admin_router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportRead,
    responses=problem_responses(*_ADMIN, ExportInProgress, ValidationFailed),
)
async def admin_request_export(
    user_id: uuid.UUID, caller: UsersExport, db: DbSession, ctx: Ctx
) -> ExportRead:
    """Export an account's data for a data subject request (permission `users:export`);
    audited, and the account is told when it is ready."""
    return await ExportService(db, ctx).request(user_id, actor_id=caller.user_id, admin=True)


@admin_router.get(
    "",
    response_model=list[ExportRead],
    responses=problem_responses(*_ADMIN, ValidationFailed),
)
async def admin_list_exports(
    user_id: uuid.UUID, _: UsersExport, db: DbSession, ctx: Ctx
) -> list[ExportRead]:
    """An account's exports still on record, newest first (permission `users:export`)."""
    return await ExportService(db, ctx).list_of(user_id, admin=True)


@admin_router.get(
    "/{export_id}/download",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The ZIP."},
        307: {"description": "Redirect to a time-limited storage URL (S3 presigning)."},
        **problem_responses(*_ADMIN, *_DOWNLOAD),
    },
)
async def admin_download_export(
    user_id: uuid.UUID, export_id: uuid.UUID, caller: UsersExport, db: DbSession, ctx: Ctx
) -> Response:
    """Download an account's ready export (permission `users:export`); audited."""
    download = await ExportService(db, ctx).download(user_id, export_id, actor_id=caller.user_id)
    return await _send(ctx, download)
