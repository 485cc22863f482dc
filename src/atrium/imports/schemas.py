"""Response bodies of user imports."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from atrium.models.user_import import ImportStatus


class ImportErrorItem(BaseModel):
    """One refused record."""

    record: int = Field(description="1-based position of the record in the file (0: the file).")
    line: int | None = Field(description="Line of the file the record starts on, if known.")
    field: str | None = Field(description="The field at fault; null for the whole record.")
    message: str


class ImportRead(BaseModel):
    """An import job and its outcome. ``failed`` imports changed nothing; ``errors`` lists
    the first 1000 errors, ``error_count`` counts them all."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3b0f6d1c-3f7a-4d7e-9a51-9f8d2f1f2a10",
                    "format": "csv",
                    "dry_run": False,
                    "status": "failed",
                    "created_at": "2026-12-02T06:00:00Z",
                    "started_at": "2026-12-02T06:00:00Z",
                    "finished_at": "2026-12-02T06:00:02Z",
                    "records": 1200,
                    "created": 0,
                    "updated": 0,
                    "error_count": 1,
                    "errors": [
                        {
                            "record": 17,
                            "line": 18,
                            "field": "email",
                            "message": "the same email as record 3",
                        }
                    ],
                }
            ]
        },
    )

    id: uuid.UUID
    format: str
    dry_run: bool
    status: ImportStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    records: int = Field(description="Records read from the file.")
    created: int = Field(description="Accounts created (or, for a dry run, that would be).")
    updated: int = Field(description="Existing accounts updated (matched by email).")
    error_count: int
    errors: list[ImportErrorItem]
