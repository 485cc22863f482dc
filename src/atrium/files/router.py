"""HTTP routes of user files: /api/v1/files."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile, status
from fastapi.responses import RedirectResponse, StreamingResponse

from atrium.auth.dependencies import CurrentPrincipal
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.pagination import InvalidCursor, Page
from atrium.core.ratelimit import RateLimited
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.files.exceptions import (
    EmptyFile,
    FileNotFound,
    FileTooLarge,
    FileTypeNotAllowed,
    MalwareDetected,
    ScannerUnavailable,
)
from atrium.files.schemas import FileRead
from atrium.files.service import FileService, file_read

router = APIRouter(prefix="/files", tags=["files"])

_AUTH = (NotAuthenticated, InvalidToken)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=FileRead,
    responses=problem_responses(
        *_AUTH,
        FileTooLarge,
        FileTypeNotAllowed,
        EmptyFile,
        MalwareDetected,
        ScannerUnavailable,
        RateLimited,
        ValidationFailed,
    ),
)
async def upload_file(
    file: Annotated[UploadFile, File(description="The file (multipart field `file`).")],
    principal: CurrentPrincipal,
    db: DbSession,
    ctx: Ctx,
) -> FileRead:
    """Upload a file; its type is sniffed from the content."""
    stored = await FileService(db, ctx).upload(principal.user_id, file)
    return FileRead.model_validate(file_read(stored))


@router.get("", response_model=Page[FileRead], responses=problem_responses(*_AUTH, InvalidCursor))
async def list_files(
    principal: CurrentPrincipal,
    db: DbSession,
    ctx: Ctx,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Page[FileRead]:
    """The signed-in user's files, newest first (cursor pagination)."""
    page = await FileService(db, ctx).list_own(principal.user_id, limit=limit, cursor=cursor)
    return Page[FileRead](
        items=[FileRead.model_validate(i) for i in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/{file_id}", response_model=FileRead, responses=problem_responses(*_AUTH, FileNotFound)
)
async def read_file(
    file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> FileRead:
    """A file's details (owner, or `files:manage`)."""
    return FileRead.model_validate(
        file_read(await FileService(db, ctx).get(principal.user_id, file_id, principal.scopes))
    )


@router.get(
    "/{file_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        307: {"description": "Redirect to a presigned URL of the object store."},
        **problem_responses(*_AUTH, FileNotFound),
    },
)
async def download_file(
    file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """The file's bytes as an attachment (owner, or `files:manage`)."""
    download = await FileService(db, ctx).download(principal.user_id, file_id, principal.scopes)
    if download.redirect_url is not None:
        return RedirectResponse(
            download.redirect_url, status_code=307, headers={"Cache-Control": "no-store"}
        )
    stored = download.stored
    return StreamingResponse(
        ctx.storage.stream(stored.storage_key),
        media_type=stored.content_type,
        headers={
            "Content-Disposition": download.content_disposition,
            "Content-Length": str(stored.size_bytes),
            "Cache-Control": "private, no-cache",
        },
    )


@router.delete(
    "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, FileNotFound),
)
async def delete_file(
    file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Delete a file and its stored content (owner, or `files:manage`)."""
    await FileService(db, ctx).delete(principal.user_id, file_id, principal.scopes)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
