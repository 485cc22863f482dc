"""Telling buyers what happened, in the unit of work of the change (so a message exists
exactly when the change was committed): the receipt of issued tickets by email through
the outbox (a transactional message, like the platform's own); the winners of a draw and
the refunds of a cancellation as domain events, which the platform's notifications turn
into in-app and email notices as each account's preferences say."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.models import Purchase, PurchaseStatus, Raffle, Ticket
from atrium.core.clock import Clock
from atrium.events.service import emit
from atrium.mail.service import Outbox
from atrium.models import User


class _At:
    """A clock stopped at the change's time (the outbox stamps its rows with it)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def _recipients(db: AsyncSession, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not user_ids:
        return {}
    rows = await db.execute(select(User).where(User.id.in_(user_ids), User.deleted_at.is_(None)))
    return {u.id: u for u in rows.scalars()}


async def _send(
    db: AsyncSession, at: datetime, template: str, user: User, context: dict[str, object]
) -> None:
    clock: Clock = _At(at)
    await Outbox(db, clock).enqueue(
        f"raffles/{template}", to=user.email, locale=user.locale, context=context, user_id=user.id
    )


async def receipt(db: AsyncSession, purchase: Purchase, numbers: list[int], now: datetime) -> None:
    """The receipt of issued tickets."""
    raffle = await db.get(Raffle, purchase.raffle_id)
    users = await _recipients(db, {purchase.user_id} if purchase.user_id else set())
    if raffle is None or purchase.user_id not in users:
        return
    context: dict[str, object] = {
        "title": raffle.title,
        "quantity": purchase.quantity,
        "amount": purchase.amount,
        "currency": purchase.currency,
        "numbers": numbers,
        "purchase_id": str(purchase.id),
    }
    await _send(db, now, "receipt", users[purchase.user_id], context)


async def winners(db: AsyncSession, raffle: Raffle, now: datetime) -> None:
    """Each winning ticket's owner is told (event ``raffles.ticket_won``, a notice)."""
    if not raffle.winners:
        return
    rows = await db.execute(
        select(Ticket.number, Ticket.owner_id).where(
            Ticket.raffle_id == raffle.id, Ticket.number.in_(raffle.winners)
        )
    )
    for number, owner in rows:
        if owner is not None:
            data = {
                "user_id": owner,
                "raffle_id": raffle.id,
                "title": raffle.title,
                "number": number,
                "prize": raffle.prize_description,
            }
            await emit(db, "raffles.ticket_won", subject=raffle.id, data=data, at=now)


async def cancelled(db: AsyncSession, raffle: Raffle, now: datetime) -> None:
    """Every buyer with a purchase to be refunded is told (event
    ``raffles.purchase_refunding``, a notice); runs after settle_on_cancel."""
    rows = await db.execute(
        select(Purchase.user_id, Purchase.amount, Purchase.currency).where(
            Purchase.raffle_id == raffle.id, Purchase.status == PurchaseStatus.refund_pending.value
        )
    )
    for user_id, amount, currency in rows:
        if user_id is not None:
            data = {
                "user_id": user_id,
                "raffle_id": raffle.id,
                "title": raffle.title,
                "amount": amount,
                "currency": currency,
            }
            await emit(db, "raffles.purchase_refunding", subject=raffle.id, data=data, at=now)
