"""Every query of notifications and broadcasts."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import Notification, NotificationBroadcast, User, UserRole


class NotificationRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _dialect(self) -> str:
        return self.db.get_bind().dialect.name

    async def add(self, values: dict[str, Any]) -> bool:
        """Insert one notification unless the account already has one from the same
        ``source_id`` (a redelivered event); True when inserted."""
        module: Any = postgresql if self._dialect() == "postgresql" else sqlite
        stmt = (
            module.insert(Notification)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["user_id", "source_id"])
            .returning(Notification.id)
        )
        return (await self.db.execute(stmt)).first() is not None

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        unread_only: bool,
        hidden: Collection[str],
    ) -> list[Notification]:
        """Up to ``limit`` notifications of ``user_id``, newest first, after the keyset
        position ``after`` (``(created_at, id)``); categories in ``hidden`` left out."""
        query = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        if hidden:
            query = query.where(Notification.category.not_in(list(hidden)))
        if after is not None:
            at, last_id = after
            query = query.where(
                or_(
                    Notification.created_at < at,
                    and_(Notification.created_at == at, Notification.id < last_id),
                )
            )
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
        return list((await self.db.execute(query.limit(limit))).scalars())

    async def since(
        self, user_id: uuid.UUID, after: tuple[datetime, uuid.UUID], limit: int
    ) -> list[Notification]:
        """Notifications of ``user_id`` after ``after`` (``(created_at, id)``), oldest
        first: the replay of a stream that reconnects with ``Last-Event-ID``."""
        at, last_id = after
        query = (
            select(Notification)
            .where(
                Notification.user_id == user_id,
                or_(
                    Notification.created_at > at,
                    and_(Notification.created_at == at, Notification.id > last_id),
                ),
            )
            .order_by(Notification.created_at, Notification.id)
            .limit(limit)
        )
        return list((await self.db.execute(query)).scalars())

    async def unread_count(self, user_id: uuid.UUID, hidden: Collection[str]) -> int:
        query = select(func.count()).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        if hidden:
            query = query.where(Notification.category.not_in(list(hidden)))
        count: int = (await self.db.execute(query)).scalar_one()
        return count

    async def unread_count_and_pending(
        self, user_id: uuid.UUID, hidden: Collection[str]
    ) -> tuple[int, bool]:
        """:meth:`unread_count` and :meth:`broadcast_in_progress` in one statement (the
        pages' header reads both on every page)."""
        query = select(func.count()).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        if hidden:
            query = query.where(Notification.category.not_in(list(hidden)))
        pending = exists().where(NotificationBroadcast.completed_at.is_(None))
        row = (await self.db.execute(select(query.scalar_subquery(), pending))).one()
        return int(row[0]), bool(row[1])

    async def get(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification | None:
        result = await self.db.execute(
            select(Notification).where(
                Notification.id == notification_id, Notification.user_id == user_id
            )
        )
        return result.scalar_one_or_none()

    async def mark_all_read(self, user_id: uuid.UUID, now: datetime) -> int:
        result = await self.db.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            .values(read_at=now)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def delete(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> bool:
        result = await self.db.execute(
            delete(Notification)
            .where(Notification.id == notification_id, Notification.user_id == user_id)
            .returning(Notification.id)
        )
        return result.first() is not None

    # --- broadcasts ---------------------------------------------------------------------

    async def add_broadcast(self, broadcast: NotificationBroadcast) -> None:
        self.db.add(broadcast)
        await self.db.flush()

    async def get_broadcast(self, broadcast_id: uuid.UUID) -> NotificationBroadcast | None:
        return await self.db.get(NotificationBroadcast, broadcast_id, with_for_update=True)

    def _audience(self, broadcast: NotificationBroadcast) -> Any:
        """The ids of the accounts ``broadcast`` reaches: active, not deleted, holding its
        role when it has one."""
        query = select(User.id).where(User.status == "active", User.deleted_at.is_(None))
        if broadcast.role_id is not None:
            query = query.join(UserRole, UserRole.user_id == User.id).where(
                UserRole.role_id == broadcast.role_id
            )
        return query

    async def fan_out_batch(
        self, broadcast: NotificationBroadcast, now: datetime, batch_size: int
    ) -> uuid.UUID | None:
        """Write the broadcast's notification for the next ``batch_size`` accounts in id
        order after ``fanned_out_until``, in one ``INSERT … SELECT`` (no rows travel to
        Atrium); the last account id reached, or None when none was left. Accounts that
        already have it are skipped (``ON CONFLICT DO NOTHING``), so a repeated batch is
        harmless."""
        audience = self._audience(broadcast)
        if broadcast.fanned_out_until is not None:
            audience = audience.where(User.id > broadcast.fanned_out_until)
        batch = audience.order_by(User.id).limit(batch_size).subquery()
        upper: uuid.UUID | None = (
            # max(uuid) does not exist in PostgreSQL before 16: the last of the batch instead.
            await self.db.execute(select(batch.c.id).order_by(batch.c.id.desc()).limit(1))
        ).scalar_one_or_none()
        if upper is None:
            return None
        targets = self._audience(broadcast).where(User.id <= upper)
        if broadcast.fanned_out_until is not None:
            targets = targets.where(User.id > broadcast.fanned_out_until)
        postgres = self._dialect() == "postgresql"
        new_id = func.gen_random_uuid() if postgres else func.lower(func.hex(func.randomblob(16)))
        col = Notification.__table__.c
        rows = targets.with_only_columns(
            new_id,
            User.id,
            literal(broadcast.category, col.category.type),
            literal(broadcast.title, col.title.type),
            literal(broadcast.body, col.body.type),
            literal(broadcast.link, col.link.type),
            literal(broadcast.id, col.source_id.type),
            literal(now, col.created_at.type),
        )
        module: Any = postgresql if postgres else sqlite
        columns = ["id", "user_id", "category", "title", "body", "link", "source_id", "created_at"]
        await self.db.execute(
            module.insert(Notification)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["user_id", "source_id"])
        )
        return upper

    async def broadcast_in_progress(self) -> bool:
        """Whether some broadcast is still being fanned out (one indexed probe)."""
        query = (
            select(NotificationBroadcast.id)
            .where(NotificationBroadcast.completed_at.is_(None))
            .limit(1)
        )
        return (await self.db.execute(query)).first() is not None

    async def catch_up_broadcasts(self, user_id: uuid.UUID) -> int:
        """Write into ``user_id``'s inbox, in one ``INSERT … SELECT``, the notice of every
        broadcast still being fanned out that reaches this account and that the worker
        has not reached yet (fan-out on read, docs/architecture.md "Broadcasts"): same
        ``source_id`` and ``created_at`` as the worker's, so whichever writes first wins
        (``ON CONFLICT DO NOTHING``). The number written."""
        b = NotificationBroadcast
        postgres = self._dialect() == "postgresql"
        new_id = func.gen_random_uuid() if postgres else func.lower(func.hex(func.randomblob(16)))
        col = Notification.__table__.c
        account = exists().where(
            User.id == user_id, User.status == "active", User.deleted_at.is_(None)
        )
        holds_role = exists().where(UserRole.user_id == user_id, UserRole.role_id == b.role_id)
        rows = select(
            new_id,
            literal(user_id, col.user_id.type),
            b.category,
            b.title,
            b.body,
            b.link,
            b.id,
            b.created_at,
        ).where(
            b.completed_at.is_(None),
            or_(b.fanned_out_until.is_(None), b.fanned_out_until < user_id),
            or_(b.role_id.is_(None), holds_role),
            account,
        )
        module: Any = postgresql if postgres else sqlite
        columns = ["id", "user_id", "category", "title", "body", "link", "source_id", "created_at"]
        result = await self.db.execute(
            module.insert(Notification)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["user_id", "source_id"])
            .returning(Notification.id)
        )
        return len(result.all())
