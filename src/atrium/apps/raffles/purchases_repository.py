"""Every query of purchases, holdings, tickets, idempotency keys and Stripe events.

Availability and the per-account maximum are decided by conditional statements, never by
a read followed by a write: ``UPDATE raffles_raffle … WHERE tickets_sold +
tickets_reserved + :q <= total_tickets`` (the raffle row is locked by the UPDATE until the
transaction ends, so concurrent purchases queue on it and each sees the previous one's
counters), and an upsert of the account's holding ``… ON CONFLICT DO UPDATE … WHERE
quantity + :q <= :max``. Both work alike on PostgreSQL and SQLite (3.35+).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.models import (
    Holding,
    IdempotencyKey,
    Purchase,
    PurchaseStatus,
    Raffle,
    RaffleStatus,
    StripeEvent,
    Ticket,
)
from atrium.models import User


class PurchaseRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _insert(self, table: Any) -> Any:
        dialect = self.db.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    # --- availability -----------------------------------------------------------------

    async def take(
        self,
        raffle_id: uuid.UUID,
        quantity: int,
        now: datetime,
        *,
        reserve: bool,
        price: int | None = None,
    ) -> tuple[int, str, int, int] | None:
        """Count ``quantity`` more tickets against an open raffle, as reserved or (``reserve``
        false: a late payment) as sold, if they fit (and, given ``price``, if the ticket
        price is still that). ``(ticket_price, currency, max_per_account, tickets_sold)``
        after the change, or None."""
        counter = Raffle.tickets_reserved if reserve else Raffle.tickets_sold
        conditions = [
            Raffle.id == raffle_id,
            Raffle.status == RaffleStatus.open.value,
            Raffle.opens_at <= now,
            Raffle.closes_at > now,
            Raffle.tickets_sold + Raffle.tickets_reserved + quantity <= Raffle.total_tickets,
        ]
        if price is not None:
            conditions.append(Raffle.ticket_price == price)
        result = await self.db.execute(
            update(Raffle)
            .where(*conditions)
            .values({counter: counter + quantity})
            .returning(
                Raffle.ticket_price, Raffle.currency, Raffle.max_per_account, Raffle.tickets_sold
            )
        )
        row = result.first()
        return (row[0], row[1], row[2], row[3]) if row else None

    async def convert(self, raffle_id: uuid.UUID, quantity: int, now: datetime) -> int | None:
        """Turn ``quantity`` reserved tickets into sold ones while the raffle is open; the
        new ``tickets_sold`` (the last ticket number), or None when it is not open."""
        result = await self.db.execute(
            update(Raffle)
            .where(
                Raffle.id == raffle_id,
                Raffle.status == RaffleStatus.open.value,
                Raffle.closes_at > now,
                Raffle.tickets_reserved >= quantity,
            )
            .values(
                tickets_reserved=Raffle.tickets_reserved - quantity,
                tickets_sold=Raffle.tickets_sold + quantity,
            )
            .returning(Raffle.tickets_sold)
        )
        row = result.first()
        return int(row[0]) if row else None

    async def unreserve(
        self, raffle_id: uuid.UUID, user_id: uuid.UUID | None, quantity: int
    ) -> None:
        """Give back ``quantity`` reserved tickets to the holding and to the raffle (in
        the lock order of every path: holding, then raffle)."""
        if user_id is not None:
            await self.db.execute(
                update(Holding)
                .where(Holding.raffle_id == raffle_id, Holding.user_id == user_id)
                .values(quantity=Holding.quantity - quantity)
            )
        await self.db.execute(
            update(Raffle)
            .where(Raffle.id == raffle_id)
            .values(tickets_reserved=Raffle.tickets_reserved - quantity)
        )

    async def unhold(self, raffle_id: uuid.UUID, user_id: uuid.UUID, quantity: int) -> None:
        """Take ``quantity`` back off the account's holding (a refused reservation)."""
        await self.db.execute(
            update(Holding)
            .where(Holding.raffle_id == raffle_id, Holding.user_id == user_id)
            .values(quantity=Holding.quantity - quantity)
        )

    async def hold(
        self, raffle_id: uuid.UUID, user_id: uuid.UUID, quantity: int, maximum: int
    ) -> bool:
        """Add ``quantity`` to the account's holding if it stays within ``maximum``."""
        if quantity > maximum:
            return False
        insert = self._insert(Holding).values(
            raffle_id=raffle_id, user_id=user_id, quantity=quantity
        )
        statement = insert.on_conflict_do_update(
            index_elements=[Holding.raffle_id, Holding.user_id],
            set_={"quantity": Holding.quantity + quantity},
            where=Holding.quantity + quantity <= maximum,
        ).returning(Holding.quantity)
        return (await self.db.execute(statement)).first() is not None

    # --- purchases --------------------------------------------------------------------

    async def get(self, purchase_id: uuid.UUID, *, for_update: bool = False) -> Purchase | None:
        query = (
            select(Purchase)
            .where(Purchase.id == purchase_id)
            .execution_options(populate_existing=True)
        )
        if for_update:
            query = query.with_for_update()
        return (await self.db.execute(query)).scalar_one_or_none()

    async def by_intent(self, intent_id: str) -> Purchase | None:
        query = select(Purchase.id).where(Purchase.payment_intent_id == intent_id)
        found = (await self.db.execute(query)).scalar_one_or_none()
        return await self.get(found, for_update=True) if found else None

    async def release(
        self, purchase_id: uuid.UUID, now: datetime, status: PurchaseStatus
    ) -> Purchase | None:
        """Mark a purchase that holds a reservation ``status`` (released or failed) and give
        its tickets back, in one conditional UPDATE; None when it held none (any more)."""
        result = await self.db.execute(
            update(Purchase)
            .where(Purchase.id == purchase_id, Purchase.holds_reservation.is_(True))
            .values(status=status.value, holds_reservation=False, released_at=now)
            .returning(Purchase.raffle_id, Purchase.user_id, Purchase.quantity)
        )
        row = result.first()
        if row is None:
            return None
        await self.unreserve(row[0], row[1], row[2])
        return await self.get(purchase_id)

    async def add_tickets(self, purchase: Purchase, last_number: int, now: datetime) -> list[int]:
        """Issue the purchase's tickets, numbered up to ``last_number``."""
        numbers = list(range(last_number - purchase.quantity + 1, last_number + 1))
        self.db.add_all(
            Ticket(
                id=uuid.uuid4(),
                raffle_id=purchase.raffle_id,
                number=n,
                purchase_id=purchase.id,
                owner_id=purchase.user_id,
                issued_at=now,
            )
            for n in numbers
        )
        await self.db.flush()
        return numbers

    async def expired(self, now: datetime, limit: int) -> list[uuid.UUID]:
        rows = await self.db.execute(
            select(Purchase.id)
            .where(
                Purchase.status == PurchaseStatus.reserved.value,
                Purchase.holds_reservation.is_(True),
                Purchase.reserved_until <= now,
            )
            .limit(limit)
        )
        return [r[0] for r in rows]

    async def of_raffle(self, raffle_id: uuid.UUID, statuses: tuple[str, ...]) -> list[uuid.UUID]:
        rows = await self.db.execute(
            select(Purchase.id).where(
                Purchase.raffle_id == raffle_id, Purchase.status.in_(statuses)
            )
        )
        return [r[0] for r in rows]

    async def with_status(self, status: PurchaseStatus, limit: int) -> list[Purchase]:
        rows = await self.db.execute(
            select(Purchase).where(Purchase.status == status.value).limit(limit)
        )
        return list(rows.scalars().all())

    async def ticket_numbers(self, purchase_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
        if not purchase_ids:
            return {}
        rows = await self.db.execute(
            select(Ticket.purchase_id, Ticket.number)
            .where(Ticket.purchase_id.in_(purchase_ids))
            .order_by(Ticket.number)
        )
        out: dict[uuid.UUID, list[int]] = {}
        for purchase_id, number in rows:
            out.setdefault(purchase_id, []).append(number)
        return out

    async def of_user(
        self, user_id: uuid.UUID, limit: int, after: dict[str, Any] | None
    ) -> list[Purchase]:
        query = select(Purchase).where(Purchase.user_id == user_id)
        if after is not None:
            query = query.where(
                (Purchase.created_at < after["at"])
                | ((Purchase.created_at == after["at"]) & (Purchase.id < after["id"]))
            )
        rows = await self.db.execute(
            query.order_by(Purchase.created_at.desc(), Purchase.id.desc()).limit(limit)
        )
        return list(rows.scalars().all())

    async def page_of_raffle(
        self,
        raffle_id: uuid.UUID,
        statuses: tuple[str, ...] | None,
        limit: int,
        after: dict[str, Any] | None,
    ) -> list[tuple[Purchase, str | None]]:
        """A raffle's purchases, newest first (keyset on ``created_at, id``), each with its
        buyer's email (None once the account is gone)."""
        query = (
            select(Purchase, User.email)
            .outerjoin(User, User.id == Purchase.user_id)
            .where(Purchase.raffle_id == raffle_id)
        )
        if statuses:
            query = query.where(Purchase.status.in_(statuses))
        if after is not None:
            query = query.where(
                (Purchase.created_at < after["at"])
                | ((Purchase.created_at == after["at"]) & (Purchase.id < after["id"]))
            )
        rows = await self.db.execute(
            query.order_by(Purchase.created_at.desc(), Purchase.id.desc()).limit(limit)
        )
        return [(p, email) for p, email in rows]

    async def tickets_of_user(
        self, user_id: uuid.UUID, limit: int, after: dict[str, Any] | None
    ) -> list[Ticket]:
        query = select(Ticket).where(Ticket.owner_id == user_id)
        if after is not None:
            query = query.where(
                (Ticket.issued_at < after["at"])
                | ((Ticket.issued_at == after["at"]) & (Ticket.id < after["id"]))
            )
        rows = await self.db.execute(
            query.order_by(Ticket.issued_at.desc(), Ticket.id.desc()).limit(limit)
        )
        return list(rows.scalars().all())

    # --- idempotency and events -------------------------------------------------------

    async def idempotency(self, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        query = select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
        return (
            await self.db.execute(query.execution_options(populate_existing=True))
        ).scalar_one_or_none()

    async def forget_idempotency(self, user_id: uuid.UUID, key: str) -> None:
        await self.db.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
            )
        )

    async def purge_idempotency(self, before: datetime) -> int:
        result = await self.db.execute(
            delete(IdempotencyKey)
            .where(IdempotencyKey.created_at < before)
            .returning(IdempotencyKey.key)
        )
        return len(result.all())

    async def seen_event(self, event_id: str, kind: str, now: datetime) -> bool:
        """Record a Stripe event; True when it was recorded before (processed already)."""
        statement = (
            self._insert(StripeEvent)
            .values(id=event_id, type=kind, processed_at=now)
            .on_conflict_do_nothing(index_elements=[StripeEvent.id])
            .returning(StripeEvent.id)
        )
        return (await self.db.execute(statement)).first() is None
