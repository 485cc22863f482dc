"""Base classes for request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422), so a typo or an attempt to set
    ``is_superuser`` never passes silently."""

    model_config = ConfigDict(extra="forbid")
