"""The rules of notifications: the inbox of the signed-in account, and writing a notice.

An account's inbox shows the categories whose ``in_app`` channel its preferences enable
(``preferences.notifications.<category>.in_app``); turning a category off hides its
notices, turning it on again shows them. Lists are newest first with cursor pagination
(``core.pagination``); ``unread=true`` keeps the unread ones.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core.pagination import DEFAULT_LIMIT, CursorCodec, CursorField, Page
from atrium.models import Notification
from atrium.notifications.exceptions import NotificationNotFound
from atrium.notifications.repository import NotificationRepository
from atrium.notifications.schemas import CATEGORIES, NotificationRead
from atrium.profiles.preferences import preferences_of

# Newest first by (created_at, id).
NOTIFICATION_CURSOR = CursorCodec(
    "notifications:created_desc", t=CursorField.DATETIME, id=CursorField.UUID
)


def _position(row: Notification) -> dict[str, Any]:
    return {"t": row.created_at, "id": row.id}


async def hidden_categories(db: AsyncSession, user_id: uuid.UUID) -> set[str]:
    """The categories whose in-app channel ``user_id`` turned off."""
    prefs = (await preferences_of(db, user_id)).notifications
    return {c for c in CATEGORIES if not getattr(prefs, c).in_app}


async def catch_up(db: AsyncSession, user_id: uuid.UUID) -> int:
    """Fan-out on read: before ``user_id``'s inbox is read, write the notices of the
    broadcasts still being fanned out that the worker has not brought to it yet, so a
    broadcast is visible to every account as soon as it is recorded (docs/architecture.md,
    "Broadcasts"). One probe when no broadcast is in progress; the number written."""
    repo = NotificationRepository(db)
    if not await repo.broadcast_in_progress():
        return 0
    return await repo.catch_up_broadcasts(user_id)


async def add_notification(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    category: str,
    title: str,
    body: str,
    link: str | None,
    source_id: uuid.UUID | None,
    now: datetime,
) -> NotificationRead | None:
    """Write one notice to ``user_id``'s inbox in ``db``'s unit of work; None when the
    inbox already holds the notice of ``source_id`` (a redelivered event)."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "category": category,
        "title": title,
        "body": body,
        "link": link,
        "source_id": source_id,
        "created_at": now,
        "read_at": None,
    }
    if not await NotificationRepository(db).add(values):
        return None
    return NotificationRead.model_validate(values)


class NotificationService:
    """The signed-in account's inbox, over one request's unit of work."""

    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = NotificationRepository(db)

    async def list_page(
        self, user_id: uuid.UUID, *, limit: int | None, cursor: str | None, unread: bool
    ) -> Page[NotificationRead]:
        """One page of the inbox, newest first.

        Raises:
            InvalidCursor: 400, ``cursor`` was not issued by this list.
        """
        limit = limit or DEFAULT_LIMIT
        await catch_up(self.db, user_id)
        after = None
        if cursor is not None:
            position = NOTIFICATION_CURSOR.decode(cursor)
            after = (position["t"], position["id"])
        rows = await self.repo.page(
            user_id,
            limit=limit + 1,
            after=after,
            unread_only=unread,
            hidden=await hidden_categories(self.db, user_id),
        )
        return NOTIFICATION_CURSOR.page(rows, limit, _position, NotificationRead.model_validate)

    async def unread_count(self, user_id: uuid.UUID) -> int:
        """Unread notices in the categories the account shows in-app."""
        await catch_up(self.db, user_id)
        return await self.repo.unread_count(user_id, await hidden_categories(self.db, user_id))

    async def mark_read(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> NotificationRead:
        """Mark one notice read (idempotent: the first reading time stays).

        Raises:
            NotificationNotFound: 404, no such notice in this account's inbox.
        """
        row = await self.repo.get(user_id, notification_id)
        if row is None:
            raise NotificationNotFound("No such notification.")
        if row.read_at is None:
            row.read_at = self.ctx.clock.now()
            await self.db.flush()
        return NotificationRead.model_validate(row)

    async def mark_all_read(self, user_id: uuid.UUID) -> int:
        """Mark every unread notice read; how many."""
        await catch_up(self.db, user_id)
        return await self.repo.mark_all_read(user_id, self.ctx.clock.now())

    async def delete(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> None:
        """Remove one notice from the inbox.

        Raises:
            NotificationNotFound: 404, no such notice in this account's inbox.
        """
        if not await self.repo.delete(user_id, notification_id):
            raise NotificationNotFound("No such notification.")
