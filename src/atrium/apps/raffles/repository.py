"""Every query of raffles, the ledger and the draw log (purchases: purchases_repository)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.models import (
    DrawLogEntry,
    Purchase,
    PurchaseStatus,
    Raffle,
    RaffleStatus,
    Ticket,
)
from atrium.apps.raffles.schemas import RaffleSort, SalesFigures
from atrium.models import StoredFile

PUBLIC_STATUSES = tuple(s.value for s in RaffleStatus if s is not RaffleStatus.draft)
_PAID = (
    PurchaseStatus.paid.value,
    PurchaseStatus.refund_pending.value,
    PurchaseStatus.refunded.value,
)


@dataclass(frozen=True)
class RaffleFilter:
    statuses: tuple[str, ...]
    closes_before: datetime | None = None
    price_min: int | None = None
    price_max: int | None = None
    currency: str | None = None


def _sort_columns(sort: RaffleSort) -> tuple[Any, bool]:
    """The sort column and whether it descends."""
    if sort is RaffleSort.closes_at:
        return Raffle.closes_at, False
    if sort is RaffleSort.price:
        return Raffle.ticket_price, False
    if sort is RaffleSort.price_desc:
        return Raffle.ticket_price, True
    return Raffle.created_at, True


def _after(column: Any, descending: bool, value: Any, last_id: uuid.UUID) -> Any:
    if descending:
        return or_(column < value, and_(column == value, Raffle.id < last_id))
    return or_(column > value, and_(column == value, Raffle.id > last_id))


class RaffleRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, raffle_id: uuid.UUID, *, for_update: bool = False) -> Raffle | None:
        # populate_existing: a conditional UPDATE of this unit of work may have moved it.
        query = (
            select(Raffle).where(Raffle.id == raffle_id).execution_options(populate_existing=True)
        )
        if for_update:
            query = query.with_for_update()
        return (await self.db.execute(query)).scalar_one_or_none()

    async def titles(self, raffle_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = list(raffle_ids)
        if not ids:
            return {}
        rows = await self.db.execute(select(Raffle.id, Raffle.title).where(Raffle.id.in_(ids)))
        return {raffle_id: title for raffle_id, title in rows}

    async def image_types(self, file_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The sniffed content type of each stored file among ``file_ids``."""
        if not file_ids:
            return {}
        rows = await self.db.execute(
            select(StoredFile.id, StoredFile.content_type).where(StoredFile.id.in_(file_ids))
        )
        return {row[0]: row[1] for row in rows}

    async def page(
        self,
        filters: RaffleFilter,
        sort: RaffleSort,
        limit: int,
        after: dict[str, Any] | None,
    ) -> list[Raffle]:
        """One page (``limit`` rows) in the order of ``sort``, keyset after ``after``."""
        column, descending = _sort_columns(sort)
        query = select(Raffle)
        if len(filters.statuses) == 1:
            query = query.where(Raffle.status == filters.statuses[0])
        else:
            query = query.where(Raffle.status.in_(filters.statuses))
        if filters.closes_before is not None:
            query = query.where(Raffle.closes_at <= filters.closes_before)
        if filters.price_min is not None:
            query = query.where(Raffle.ticket_price >= filters.price_min)
        if filters.price_max is not None:
            query = query.where(Raffle.ticket_price <= filters.price_max)
        if filters.currency is not None:
            query = query.where(Raffle.currency == filters.currency)
        if after is not None:
            query = query.where(_after(column, descending, after["v"], after["id"]))
        order = (column.desc(), Raffle.id.desc()) if descending else (column, Raffle.id)
        rows = await self.db.execute(query.order_by(*order).limit(limit))
        return list(rows.scalars().all())

    async def sales(self, raffle_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
        """``{raffle id: (gross, refunded)}`` in minor units, one query."""
        if not raffle_ids:
            return {}
        gross = func.coalesce(
            func.sum(case((Purchase.status.in_(_PAID), Purchase.amount), else_=0)), 0
        )
        refunded = func.coalesce(func.sum(Purchase.amount_refunded), 0)
        rows = await self.db.execute(
            select(Purchase.raffle_id, gross, refunded)
            .where(Purchase.raffle_id.in_(raffle_ids))
            .group_by(Purchase.raffle_id)
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    async def figures(self, raffle: Raffle) -> SalesFigures:
        gross, refunded = (await self.sales([raffle.id])).get(raffle.id, (0, 0))
        return SalesFigures(
            tickets_sold=raffle.tickets_sold,
            tickets_reserved=raffle.tickets_reserved,
            gross=gross,
            refunded=refunded,
        )

    async def ledger(self, raffle_id: uuid.UUID) -> list[tuple[int, uuid.UUID]]:
        """``(number, ticket id)`` of every ticket, by number."""
        rows = await self.db.execute(
            select(Ticket.number, Ticket.id)
            .where(Ticket.raffle_id == raffle_id)
            .order_by(Ticket.number)
        )
        return [(row[0], row[1]) for row in rows]

    async def ledger_page(
        self, raffle_id: uuid.UUID, limit: int, after: int | None
    ) -> list[tuple[int, uuid.UUID]]:
        query = select(Ticket.number, Ticket.id).where(Ticket.raffle_id == raffle_id)
        if after is not None:
            query = query.where(Ticket.number > after)
        rows = await self.db.execute(query.order_by(Ticket.number).limit(limit))
        return [(row[0], row[1]) for row in rows]

    async def ticket_ids(
        self, raffle_id: uuid.UUID, numbers: Sequence[int]
    ) -> dict[int, uuid.UUID]:
        rows = await self.db.execute(
            select(Ticket.number, Ticket.id).where(
                Ticket.raffle_id == raffle_id, Ticket.number.in_(numbers)
            )
        )
        return {row[0]: row[1] for row in rows}

    async def transition(
        self, raffle_id: uuid.UUID, from_: Sequence[str], to: str, **values: Any
    ) -> bool:
        """Move the raffle from one of ``from_`` to ``to`` (and set ``values``) in one
        conditional UPDATE; False when it was not in ``from_`` (someone else moved it)."""
        result = await self.db.execute(
            update(Raffle)
            .where(Raffle.id == raffle_id, Raffle.status.in_(from_))
            .values(status=to, **values)
            .returning(Raffle.id)
        )
        return result.first() is not None

    async def due(self, status: str, column: Any, now: datetime, limit: int) -> list[uuid.UUID]:
        """Ids of raffles in ``status`` whose ``column`` time has come."""
        rows = await self.db.execute(
            select(Raffle.id).where(Raffle.status == status, column <= now).limit(limit)
        )
        return [row[0] for row in rows]

    async def draw_log(self, limit: int, after_seq: int | None) -> list[DrawLogEntry]:
        query = select(DrawLogEntry).order_by(DrawLogEntry.seq).limit(limit)
        if after_seq is not None:
            query = query.where(DrawLogEntry.seq > after_seq)
        return list((await self.db.execute(query)).scalars())
