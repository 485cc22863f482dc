"""Waking the webhook workers of this process once new deliveries are committed, so the
embedded default sends without waiting for the next poll."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.db import after_commit, after_rollback

_WAKE: set[Callable[[], None]] = set()
_PENDING = "atrium.webhooks.wake_pending"


def on_new_deliveries(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after each commit that queued deliveries in this process; returns
    the function that unregisters it."""
    _WAKE.add(callback)
    return lambda: _WAKE.discard(callback)


def wake_on_commit(db: AsyncSession) -> None:
    """Wake this process's webhook workers once ``db``'s transaction commits."""
    if not _WAKE or db.info.get(_PENDING):
        return
    db.info[_PENDING] = True

    async def wake() -> None:
        db.info.pop(_PENDING, None)
        for callback in list(_WAKE):
            callback()

    async def forget() -> None:
        db.info.pop(_PENDING, None)

    after_commit(db, wake)
    after_rollback(db, forget)
