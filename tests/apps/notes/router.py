"""HTTP routes of the notes application: /api/v1/apps/notes*."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from atrium.audit.service import record
from atrium.context import Ctx
from atrium.core.apps import app_settings
from atrium.core.db import DbSession
from atrium.core.templates import render
from atrium.errors import NotFound, ValidationFailed
from atrium.rbac.dependencies import Authorized, require
from tests.apps.notes.models import Note
from tests.apps.notes.settings import NotesSettings

router = APIRouter(prefix="/apps/notes", tags=["notes"])

NotesRead = Annotated[Authorized, require("notes:read")]
NotesWrite = Annotated[Authorized, require("notes:write")]


class NoteNotFound(NotFound):
    code = "note_not_found"
    title = "Note not found"


class NoteCreate(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)


class NoteRead(BaseModel):
    id: uuid.UUID
    author_id: uuid.UUID
    body: str


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NoteRead)
async def create_note(body: NoteCreate, caller: NotesWrite, db: DbSession, ctx: Ctx) -> NoteRead:
    """Write a note."""
    limit = app_settings(ctx.apps, "notes", NotesSettings).max_length
    if len(body.body) > limit:
        raise ValidationFailed(f"A note has at most {limit} characters.")
    note = Note(
        id=uuid.uuid4(), author_id=caller.user_id, body=body.body, created_at=ctx.clock.now()
    )
    db.add(note)
    await db.flush()
    await record(
        db,
        "notes.created",
        at=note.created_at,
        actor_id=caller.user_id,
        target_type="note",
        target_id=note.id,
    )
    return NoteRead(id=note.id, author_id=note.author_id, body=note.body)


async def _get(db: DbSession, note_id: uuid.UUID) -> Note:
    note = await db.get(Note, note_id)
    if note is None:
        raise NoteNotFound("No such note.")
    return note


@router.get("/{note_id}", response_model=NoteRead)
async def get_note(note_id: uuid.UUID, _: NotesRead, db: DbSession) -> NoteRead:
    """One note."""
    note = await _get(db, note_id)
    return NoteRead(id=note.id, author_id=note.author_id, body=note.body)


@router.get("/{note_id}/card", response_class=HTMLResponse)
async def note_card(note_id: uuid.UUID, _: NotesRead, db: DbSession) -> HTMLResponse:
    """One note as an HTML card, from the application's templates."""
    note = await _get(db, note_id)
    return HTMLResponse(render("notes/card.html", body=note.body))
