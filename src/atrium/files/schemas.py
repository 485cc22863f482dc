"""Response bodies of user files."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class FileRead(BaseModel):
    """A stored file. ``content_type`` is what the content was sniffed as."""

    id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the content, hex.")
    created_at: datetime
    content_url: str = Field(description="Download URL (`Content-Disposition: attachment`).")
