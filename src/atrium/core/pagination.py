"""Cursor (keyset) pagination: opaque cursors and the ``{items, next_cursor}`` page.

A cursor encodes the sort key and the position (the last row's sort value and id) as
URL-safe base64 of compact JSON. It is not a secret and needs no signature: filters are
re-applied on every page, so a forged cursor can only move the position. Keyset paging
costs the same at any depth and neither repeats nor skips rows when rows are inserted
between pages (no OFFSET, no COUNT).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from atrium.errors import AppError

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 50


class InvalidCursor(AppError):
    status = 422
    code = "invalid_cursor"
    title = "Invalid cursor"


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, kind: str) -> dict[str, Any]:
    """The position in ``cursor``, checked to belong to a list ordered by ``kind``.

    Raises:
        InvalidCursor: 422, malformed, or made for another ordering.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not valid.") from exc
    if not isinstance(value, dict) or value.get("k") != kind:
        raise InvalidCursor("The cursor does not belong to this list or ordering.")
    return value
