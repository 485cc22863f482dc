"""The notes application's settings group: ``ATRIUM_NOTES__*``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATRIUM_NOTES__", extra="ignore")

    # Longest note body, in characters.
    max_length: int = Field(default=200, ge=1, le=10_000)
