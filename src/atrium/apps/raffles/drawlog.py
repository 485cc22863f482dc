"""The public hash-chained draw log: every commitment, draw and cancellation of a raffle.

Each entry's ``hash`` is ``SHA-256`` of the canonical JSON (RFC 8785-style: sorted keys,
no spaces, ASCII) of ``{"seq", "raffle_id", "kind", "at", "data", "prev_hash"}``, and
``prev_hash`` is the previous entry's ``hash`` (64 zeros for the first). Rewriting a past
entry changes its hash and breaks every later link; ``docs/apps/verify_draw.py --log``
checks the whole chain. Appends are serialised (a transaction-scoped advisory lock on
PostgreSQL; SQLite's writers are serialised anyway), so the chain never forks.

Extension point: publishing the head's hash elsewhere (an external ledger, an RFC 3161
timestamping service) makes rewriting the whole chain detectable too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.models import DrawLogEntry

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the appends (any constant unique to this log).
_LOCK_KEY = 0x7261_6666_6C65_6C6F


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(
    seq: int, raffle_id: str, kind: str, at: str, data: dict[str, Any], prev_hash: str
) -> str:
    """The hash of one entry (hex), over its fields as published."""
    body = {
        "seq": seq,
        "raffle_id": raffle_id,
        "kind": kind,
        "at": at,
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def iso(at: datetime) -> str:
    """The timestamp as published: UTC, ISO 8601 with microseconds and ``+00:00``."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


async def append(
    db: AsyncSession, raffle_id: uuid.UUID, kind: str, data: dict[str, Any], at: datetime
) -> DrawLogEntry:
    """Append one entry in ``db``'s unit of work (flushed). ``kind``: ``commitment``,
    ``draw`` or ``cancellation``; ``data``: JSON values only."""
    bind = db.get_bind()
    if bind.dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    head = (
        await db.execute(
            select(DrawLogEntry.seq, DrawLogEntry.hash).order_by(DrawLogEntry.seq.desc()).limit(1)
        )
    ).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    at = at.astimezone(UTC)
    entry = DrawLogEntry(
        seq=seq,
        raffle_id=raffle_id,
        kind=kind,
        at=at,
        data=data,
        prev_hash=prev,
        hash=entry_hash(seq, str(raffle_id), kind, iso(at), data, prev),
    )
    db.add(entry)
    await db.flush()
    return entry
