"""Request and response bodies of data exports."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ExportRead(BaseModel):
    """An export of an account's data. ``status``: ``pending`` (requested), ``running``
    (being built), ``ready`` (downloadable until ``expires_at``), ``failed``.
    ``size_bytes`` is the ZIP's size once ready; ``download_url`` its path."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    status: str = Field(examples=["ready"])
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    size_bytes: int | None
    download_url: str | None = None
