"""Emitting domain events: one call, in the caller's unit of work (the outbox pattern).

``await emit(db, "user.suspended", actor=admin_id, subject=user_id)`` adds one ``event``
row to ``db``'s transaction: it exists exactly when the change it describes was
committed, and a rolled back change leaves no event behind. The dispatcher
(:mod:`atrium.events.dispatcher`) hands it to every consumer afterwards, at least once.

``data`` is validated against the type's JSON Schema (:mod:`atrium.events.catalogue`);
nothing else can be written, so an event never carries a field the catalogue does not
declare (and none it declares is a secret, hash or token).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from jsonschema import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.db import after_commit, after_rollback
from atrium.core.middleware import current_scope
from atrium.events.catalogue import event_type
from atrium.models import Event

log = structlog.get_logger(__name__)

ACTOR_USER, ACTOR_SYSTEM = "user", "system"

# Dispatchers running in this process, woken once a transaction that emitted commits (so
# the embedded default delivers without waiting for the next poll).
_WAKE: set[Callable[[], None]] = set()
_WAKE_PENDING = "atrium.events.wake_pending"


# In-process reactions to committed events of a type, for what cannot wait for the
# dispatcher (closing the live streams of a revoked session within a second).
_COMMITTED: dict[str, list[Callable[[list[Event]], Awaitable[None]]]] = {}
_COMMITTED_PENDING = "atrium.events.committed"


def on_committed(
    type_: str, callback: Callable[[list[Event]], Awaitable[None]]
) -> Callable[[], None]:
    """Call ``callback`` with the events of ``type_`` a transaction of this process emitted,
    once it has committed (never after a rollback). Best effort and local: consumers
    remain the way to react to every event; returns the function that unregisters it."""
    _COMMITTED.setdefault(type_, []).append(callback)
    return lambda: _COMMITTED.get(type_, []).remove(callback)


def _after_commit_hooks(db: AsyncSession, event: Event) -> None:
    if event.type not in _COMMITTED:
        return
    pending: list[Event] | None = db.info.get(_COMMITTED_PENDING)
    if pending is not None:
        pending.append(event)
        return
    pending = db.info[_COMMITTED_PENDING] = [event]

    async def run() -> None:
        db.info.pop(_COMMITTED_PENDING, None)
        for type_ in dict.fromkeys(e.type for e in pending):
            for callback in list(_COMMITTED.get(type_, ())):
                try:
                    await callback([e for e in pending if e.type == type_])
                except Exception as exc:  # noqa: BLE001 - the change is committed already
                    log.warning("event_commit_hook_failed", type=type_, error=str(exc))

    async def forget() -> None:
        db.info.pop(_COMMITTED_PENDING, None)

    after_commit(db, run)
    after_rollback(db, forget)


def on_emit(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after each commit of a transaction that emitted events in this
    process; returns the function that unregisters it."""
    _WAKE.add(callback)
    return lambda: _WAKE.discard(callback)


def _request_id() -> str | None:
    scope = current_scope.get()
    if scope is None:
        return None
    state = scope.get("state") or {}
    request_id = state.get("request_id")
    return str(request_id) if request_id is not None else None


def _json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def new_event(
    type: str,
    *,
    subject: uuid.UUID | str,
    actor: uuid.UUID | None = None,
    data: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Event:
    """An :class:`Event` of catalogue type ``type``, validated, not yet added.

    Raises:
        KeyError: ``type`` is not in the catalogue (a programming error).
        ValueError: ``data`` does not match the type's JSON Schema (a programming error).
    """
    entry = event_type(type)
    payload = _json(dict(data or {}))
    try:
        entry.validator.validate(payload)
    except ValidationError as exc:
        raise ValueError(f"{type} data: {exc.message}") from exc
    return Event(
        id=uuid.uuid4(),
        type=type,
        version=entry.version,
        occurred_at=at or datetime.now(UTC),
        actor_type=ACTOR_USER if actor is not None else ACTOR_SYSTEM,
        actor_id=actor,
        subject_type=entry.subject,
        subject_id=str(subject),
        data=payload,
        request_id=_request_id(),
        dispatched_at=None,
    )


async def emit(
    db: AsyncSession,
    type: str,
    *,
    subject: uuid.UUID | str,
    actor: uuid.UUID | None = None,
    data: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Event:
    """Add one event to ``db``'s unit of work (written at the next flush or the commit,
    never on its own).

    Args:
        type: a catalogue name, e.g. ``"user.suspended"``.
        subject: the id of what the event is about (its kind is the catalogue's
            ``subject``: ``user``, ``session``, ``role``, ``file``).
        actor: the account that caused it; ``None`` for the system.
        data: the type's fields (UUIDs and datetimes are turned into strings).
        at: when it happened (UTC; the service's clock), now by default.

    Raises:
        KeyError: unknown ``type``; ValueError: ``data`` does not match its schema.
    """
    event = new_event(type, subject=subject, actor=actor, data=data, at=at)
    db.add(event)
    _after_commit_hooks(db, event)
    if _WAKE and not db.info.get(_WAKE_PENDING):
        db.info[_WAKE_PENDING] = True

        async def wake() -> None:
            db.info.pop(_WAKE_PENDING, None)
            for callback in list(_WAKE):
                callback()

        async def forget() -> None:
            db.info.pop(_WAKE_PENDING, None)

        after_commit(db, wake)
        after_rollback(db, forget)
    log.debug("event_emitted", type=type, event_id=str(event.id))
    return event
