"""Cursor (keyset) pagination: one codec for every list, and the ``{items, next_cursor}`` page.

A cursor encodes the list's *kind* (which list and ordering it belongs to) and the
position where the previous page ended (the last row's sort value and id) as URL-safe
base64 of compact JSON. It is not a secret and needs no signature: filters are re-applied
on every page, so a forged cursor can only move the position. It is still client input,
so :meth:`CursorCodec.decode` checks every field against the list's declared types
(UUIDs, timezone-aware datetimes within the range every backend stores, bounded integers
and strings) and answers anything else with 400 ``invalid_cursor``, never a 500.

Keyset paging costs the same at any depth and neither repeats nor skips rows when rows
are inserted between pages (no OFFSET, no COUNT). A list declares its codec once::

    _CURSOR = CursorCodec("files:created_desc", at=CursorField.DATETIME, id=CursorField.UUID)

    after = _CURSOR.decode(cursor) if cursor else None      # {"at": datetime, "id": UUID}
    rows = await repo.list(limit=limit + 1, after=after)
    return _CURSOR.page(rows, limit, lambda r: {"at": r.created_at, "id": r.id})
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from atrium.errors import AppError

T = TypeVar("T")
R = TypeVar("R")

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
# Longer than any cursor Atrium writes (the longest carries a 320-character email).
MAX_CURSOR_LENGTH = 1024
_MAX_STRING = 512
_INT_BOUND = 2**63  # a signed 64-bit column
# What PostgreSQL, SQLite (ISO text) and Python's datetime all represent, in UTC: a day of
# margin at either end keeps a conversion to another offset from overflowing.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)
_KIND_KEY = "k"


class InvalidCursor(AppError):
    status = 400
    code = "invalid_cursor"
    title = "Invalid cursor"


class Page(BaseModel, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None


class CursorField(enum.Enum):
    """The type of one position field; ``*_OR_NULL`` also accepts JSON null."""

    UUID = "uuid"
    DATETIME = "datetime"
    DATETIME_OR_NULL = "datetime?"
    INT = "int"
    STR = "str"


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode_value(kind: CursorField, raw: Any) -> Any:
    """``raw`` (a JSON value) as ``kind``; raises ValueError when it is not one."""
    if kind is CursorField.DATETIME_OR_NULL:
        return None if raw is None else _decode_value(CursorField.DATETIME, raw)
    if kind is CursorField.UUID:
        if not isinstance(raw, str) or len(raw) > 36:
            raise ValueError("not a UUID")
        return uuid.UUID(raw)
    if kind is CursorField.DATETIME:
        if not isinstance(raw, str) or len(raw) > 40:
            raise ValueError("not a datetime")
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime")
        try:
            value = value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("datetime out of range") from exc
        if not _EARLIEST <= value <= _LATEST:
            raise ValueError("datetime out of range")
        return value
    if kind is CursorField.INT:
        if type(raw) is not int or not -_INT_BOUND <= raw < _INT_BOUND:
            raise ValueError("not an integer")
        return raw
    if not isinstance(raw, str) or len(raw) > _MAX_STRING or "\x00" in raw:
        raise ValueError("not a string")
    return raw


class CursorCodec:
    """Encodes and validates the cursors of one list and ordering (its ``kind``).

    ``fields`` names each position field and its :class:`CursorField` type. A decoded
    cursor is a dict with exactly those keys, each of its declared Python type
    (``uuid.UUID``, an aware UTC ``datetime``, ``int``, ``str``, or ``None`` for the
    ``*_OR_NULL`` types).
    """

    def __init__(self, kind: str, **fields: CursorField) -> None:
        if not fields or _KIND_KEY in fields:
            raise ValueError("a cursor needs position fields, and 'k' is reserved")
        self.kind = kind
        self.fields = fields

    def encode(self, position: Mapping[str, Any]) -> str:
        """The opaque cursor of ``position`` (a value for each declared field)."""
        body = {_KIND_KEY: self.kind}
        body.update({name: _encode_value(position[name]) for name in self.fields})
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str) -> dict[str, Any]:
        """The typed position in ``cursor``.

        Raises:
            InvalidCursor: 400: not base64 of a JSON object, made for another list or
                ordering, a field missing, extra or of the wrong type, a naive or
                out-of-range datetime.
        """
        body = _decode_json(cursor)
        if body.get(_KIND_KEY) != self.kind:
            raise InvalidCursor("The cursor does not belong to this list or ordering.")
        if body.keys() != {_KIND_KEY, *self.fields}:
            raise InvalidCursor("The cursor is not valid.")
        try:
            return {name: _decode_value(kind, body[name]) for name, kind in self.fields.items()}
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("The cursor is not valid.") from exc

    def page(
        self,
        rows: Sequence[R],
        limit: int,
        position: Callable[[R], Mapping[str, Any]],
        item: Callable[[R], T] | None = None,
    ) -> Page[T]:
        """The page of ``rows`` (fetched as ``limit + 1`` to know whether more follow):
        its first ``limit`` rows, mapped through ``item``, and the cursor after the last
        of them when there are more."""
        shown = rows[:limit]
        next_cursor = self.encode(position(shown[-1])) if len(rows) > limit else None
        convert: Callable[[R], Any] = item if item is not None else (lambda r: r)
        return Page(items=[convert(r) for r in shown], next_cursor=next_cursor)


def _decode_json(cursor: str) -> dict[str, Any]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("The cursor is not valid.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise InvalidCursor("The cursor is not valid.") from exc
    if not isinstance(value, dict):
        raise InvalidCursor("The cursor is not valid.")
    return value
