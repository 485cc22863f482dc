"""Refunds by hand (``raffles.payments:refund``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.exceptions import PurchaseNotFound, RefundRefused
from atrium.apps.raffles.models import PurchaseStatus
from atrium.apps.raffles.purchases import purchase_view
from atrium.apps.raffles.purchases_repository import PurchaseRepository
from atrium.apps.raffles.schemas import PurchaseRead
from atrium.audit.service import record
from atrium.rbac.authorized import Authorized


async def refund_by_hand(
    db: AsyncSession, now: datetime, caller: Authorized, purchase_id: uuid.UUID
) -> PurchaseRead:
    """Mark a paid purchase to be refunded (the worker asks Stripe, with the idempotency
    key ``atrium-refund-<id>``). Its tickets stay in the ledger and the draw: the ledger
    of an open raffle is numbered 1..N and never loses a ticket.

    Raises:
        PurchaseNotFound: 404. RefundRefused: 409, not paid (or already refunded).
    """
    repo = PurchaseRepository(db)
    purchase = await repo.get(purchase_id, for_update=True)
    if purchase is None:
        raise PurchaseNotFound()
    if purchase.status != PurchaseStatus.paid.value:
        raise RefundRefused(f"The purchase is {purchase.status}.")
    purchase.status = PurchaseStatus.refund_pending.value
    await db.flush()
    await record(
        db,
        "raffles.purchase_refunded",
        at=now,
        actor_id=caller.user_id,
        target_type="raffle_purchase",
        target_id=purchase.id,
        details={"amount": purchase.amount, "currency": purchase.currency},
    )
    numbers = (await repo.ticket_numbers([purchase.id])).get(purchase.id, [])
    return purchase_view(purchase, numbers)
