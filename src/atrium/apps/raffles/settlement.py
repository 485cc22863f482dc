"""Settling purchases: Stripe's webhook events, expired reservations, refunds, and what
closing or cancelling a raffle does to its purchases.

Events are processed once each (their id is recorded in the same transaction as their
effect) and in any order: every handler moves a purchase only from the states where the
event means something, under the purchase's row lock.

- ``payment_intent.succeeded``: a purchase still holding its reservation turns it into
  tickets (numbered on, under the raffle row's lock, while the raffle is open). A payment
  for a purchase whose reservation was released (expired, failed, cancelled) is *late*:
  it gets tickets if they are still available and within the account's maximum, and is
  refunded otherwise.
- ``payment_intent.payment_failed`` and ``payment_intent.canceled``: the reservation is
  given back.
- ``charge.refunded``: the refunded amount is recorded (``refunded`` once in full).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.apps.raffles.models import Purchase, PurchaseStatus, Raffle
from atrium.apps.raffles.payments import gateway_for
from atrium.apps.raffles.purchases_repository import PurchaseRepository
from atrium.apps.raffles.repository import RaffleRepository
from atrium.apps.raffles.settings import RafflesSettings
from atrium.core.clock import Clock
from atrium.core.db import unit_of_work

log = structlog.get_logger(__name__)
_SETTLED = (
    PurchaseStatus.paid.value,
    PurchaseStatus.refund_pending.value,
    PurchaseStatus.refunded.value,
)

# Called once a purchase's tickets are issued, in that unit of work (the receipt).
IssuedHook = Callable[[AsyncSession, Purchase, list[int], datetime], Awaitable[None]]
ISSUED_HOOKS: list[IssuedHook] = []


class Settlement:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: RafflesSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings

    async def handle(self, event: dict[str, Any]) -> str:
        """Apply one verified Stripe event; what it did (``duplicate``, ``issued``,
        ``refund``, ``released``, ``recorded``, ``ignored``)."""
        kind = str(event["type"])
        obj = event["data"]["object"]
        now = self.clock.now()
        async with unit_of_work(self.sessionmaker) as db:
            repo = PurchaseRepository(db)
            if await repo.seen_event(str(event["id"]), kind, now):
                return "duplicate"
            if kind.startswith("payment_intent."):
                purchase = await self._of_intent(repo, obj)
                if purchase is None:
                    return "ignored"
                if kind == "payment_intent.succeeded":
                    return await self._paid(repo, purchase, obj, now)
                if kind in ("payment_intent.payment_failed", "payment_intent.canceled"):
                    released = await repo.release(purchase.id, now, PurchaseStatus.released)
                    return "released" if released else "ignored"
            if kind == "charge.refunded":
                purchase = await repo.by_intent(str(obj.get("payment_intent") or ""))
                if purchase is None:
                    return "ignored"
                self._refunded(purchase, int(obj.get("amount_refunded") or 0), now)
                return "recorded"
        return "ignored"

    @staticmethod
    async def _of_intent(repo: PurchaseRepository, obj: dict[str, Any]) -> Purchase | None:
        # The metadata names the purchase even before step 3 of the purchase recorded the
        # intent's id (the event can arrive first).
        raw = (obj.get("metadata") or {}).get("purchase_id")
        try:
            purchase = await repo.get(uuid.UUID(str(raw)), for_update=True) if raw else None
        except ValueError:
            purchase = None
        if purchase is None:
            purchase = await repo.by_intent(str(obj.get("id")))
        elif purchase.payment_intent_id is None:
            purchase.payment_intent_id = str(obj.get("id"))
        elif purchase.payment_intent_id != obj.get("id"):
            return None
        return purchase

    async def _paid(
        self, repo: PurchaseRepository, purchase: Purchase, obj: dict[str, Any], now: datetime
    ) -> str:
        if purchase.status in _SETTLED:
            return "ignored"
        received = int(obj.get("amount_received") or obj.get("amount") or 0)
        if received != purchase.amount or str(obj.get("currency", "")).upper() != purchase.currency:
            log.error("stripe_amount_mismatch", purchase_id=str(purchase.id), received=received)
            return self._to_refund(purchase, now)
        last: int | None = None
        if purchase.holds_reservation:
            last = await repo.convert(purchase.raffle_id, purchase.quantity, now)
            if last is None:  # closed meanwhile: the reservation goes back, the money too
                await repo.release(purchase.id, now, PurchaseStatus.released)
        else:
            last = await self._late(repo, purchase, now)
        if last is None:
            return self._to_refund(purchase, now)
        numbers = await repo.add_tickets(purchase, last, now)
        purchase.status = PurchaseStatus.paid.value
        purchase.holds_reservation = False
        purchase.paid_at = now
        for hook in ISSUED_HOOKS:
            await hook(repo.db, purchase, numbers, now)
        return "issued"

    @staticmethod
    async def _late(repo: PurchaseRepository, purchase: Purchase, now: datetime) -> int | None:
        """Tickets for a payment that came after its reservation was released, if they
        are still available and within the account's maximum (else None)."""
        raffle = await RaffleRepository(repo.db).get(purchase.raffle_id)
        if raffle is None or purchase.user_id is None:
            return None
        savepoint = await repo.db.begin_nested()
        # Holding, then raffle: the lock order of every path.
        held = await repo.hold(
            purchase.raffle_id, purchase.user_id, purchase.quantity, raffle.max_per_account
        )
        taken = (
            await repo.take(purchase.raffle_id, purchase.quantity, now, reserve=False)
            if held
            else None
        )
        if taken is None:
            await savepoint.rollback()
            return None
        await savepoint.commit()
        return taken[3]

    @staticmethod
    def _to_refund(purchase: Purchase, now: datetime) -> str:
        purchase.status = PurchaseStatus.refund_pending.value
        purchase.paid_at = purchase.paid_at or now
        return "refund"

    @staticmethod
    def _refunded(purchase: Purchase, amount: int, now: datetime) -> None:
        purchase.amount_refunded = max(purchase.amount_refunded, amount)
        if purchase.amount_refunded >= purchase.amount:
            purchase.status = PurchaseStatus.refunded.value
            purchase.refunded_at = purchase.refunded_at or now

    # --- the worker's passes ------------------------------------------------------------

    async def expire(self, batch: int = 500) -> int:
        """Release reservations past ``reserved_until``; how many."""
        now = self.clock.now()
        async with self.sessionmaker() as db:
            due = await PurchaseRepository(db).expired(now, batch)
        done = 0
        for purchase_id in due:
            async with unit_of_work(self.sessionmaker) as db:
                repo = PurchaseRepository(db)
                locked = await repo.get(purchase_id, for_update=True)
                if locked is not None and locked.status == PurchaseStatus.reserved.value:
                    done += (
                        await repo.release(purchase_id, now, PurchaseStatus.released) is not None
                    )
        return done

    async def cancel_intents(self, batch: int = 100) -> int:
        """Cancel the PaymentIntents of released purchases (once: the client secret is
        withdrawn then). A payment Stripe still takes later is settled as late."""
        async with self.sessionmaker() as db:
            rows = [
                p
                for status in (PurchaseStatus.released, PurchaseStatus.failed)
                for p in await PurchaseRepository(db).with_status(status, batch)
                if p.client_secret is not None and p.payment_intent_id is not None
            ]
        gateway = gateway_for(self.settings)
        for purchase in rows:
            assert purchase.payment_intent_id is not None
            await gateway.cancel_intent(purchase.payment_intent_id)
            async with unit_of_work(self.sessionmaker) as db:
                locked = await PurchaseRepository(db).get(purchase.id, for_update=True)
                if locked is not None and locked.status in (
                    PurchaseStatus.released.value,
                    PurchaseStatus.failed.value,
                ):
                    locked.client_secret = None
        return len(rows)

    async def refund_pending(self, batch: int = 100) -> int:
        """Refund every purchase waiting for it (idempotency key ``atrium-refund-<id>``);
        how many were refunded. A purchase Stripe cannot refund now is retried next pass."""
        async with self.sessionmaker() as db:
            rows = await PurchaseRepository(db).with_status(PurchaseStatus.refund_pending, batch)
        gateway = gateway_for(self.settings)
        done = 0
        for purchase in rows:
            if purchase.payment_intent_id is None:
                continue
            refund = await gateway.refund(
                purchase.payment_intent_id, f"atrium-refund-{purchase.id}"
            )
            async with unit_of_work(self.sessionmaker) as db:
                locked = await PurchaseRepository(db).get(purchase.id, for_update=True)
                if locked is not None and refund["status"] in ("succeeded", "pending"):
                    self._refunded(locked, int(refund["amount"]), self.clock.now())
                    done += 1
        return done

    async def purge_idempotency(self) -> int:
        before = self.clock.now() - timedelta(hours=self.settings.idempotency_retention_hours)
        async with unit_of_work(self.sessionmaker) as db:
            return await PurchaseRepository(db).purge_idempotency(before)


async def release_on_close(db: AsyncSession, raffle: Raffle, now: datetime) -> None:
    """Closing: reservations still unpaid are released (a later payment is refunded)."""
    repo = PurchaseRepository(db)
    for purchase_id in await repo.of_raffle(raffle.id, (PurchaseStatus.reserved.value,)):
        await repo.release(purchase_id, now, PurchaseStatus.released)


async def settle_on_cancel(db: AsyncSession, raffle: Raffle, now: datetime) -> None:
    """Cancelling: reservations are released and every paid purchase is to be refunded."""
    await release_on_close(db, raffle, now)
    repo = PurchaseRepository(db)
    for purchase_id in await repo.of_raffle(raffle.id, (PurchaseStatus.paid.value,)):
        purchase = await repo.get(purchase_id, for_update=True)
        if purchase is not None and purchase.status == PurchaseStatus.paid.value:
            purchase.status = PurchaseStatus.refund_pending.value
    await db.flush()
