"""Buying tickets: reservation, the Stripe PaymentIntent, idempotent replays, and an
account's purchases and tickets.

A purchase runs in two short units of work around one Stripe call, so that no lock or
transaction is held while Stripe answers:

1. *Reserve* (one transaction): claim the ``Idempotency-Key`` (a row per account and key;
   a concurrent request with the same key waits on its primary key, then finds it), count
   the tickets as reserved with a conditional UPDATE of the raffle row, add them to the
   account's holding with a conditional upsert, insert the purchase (``reserved`` until
   now + ``reservation_minutes``). The raffle's UPDATE comes last, so its row lock is held
   for one round trip, until the commit. A refusal (sold out, limit, not open) is stored
   as the key's answer, what it had written undone.
2. *Stripe*: create the PaymentIntent (amount = quantity * price, metadata with the
   purchase, raffle and account ids, idempotency key ``atrium-purchase-<purchase id>``).
3. *Record* (one transaction): the PaymentIntent's id and client secret, and the answer
   (201) on the key. If Stripe refused the card (402) the reservation is given back and the
   answer stored; if Stripe could not be reached (503) the reservation is given back and
   the key forgotten, so the client may retry with the same key.

The same key with the same request replays the stored answer (with ``Idempotent-Replayed:
true``); with another request it is 422 ``idempotency_key_reused``; while the first is
still between steps 1 and 3 it is 409 ``idempotency_key_in_use`` (as Stripe does).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.exceptions import (
    AccountLimitReached,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    PaymentFailed,
    PaymentsUnavailable,
    QuantityTooLarge,
    RaffleNotFound,
    RaffleNotOpen,
    TicketsUnavailable,
)
from atrium.apps.raffles.models import IdempotencyKey, Purchase, PurchaseStatus, RaffleStatus
from atrium.apps.raffles.payments import gateway_for
from atrium.apps.raffles.purchases_repository import PurchaseRepository
from atrium.apps.raffles.repository import RaffleRepository
from atrium.apps.raffles.schemas import (
    PurchaseAdminRead,
    PurchaseCreated,
    PurchaseRead,
    TicketRead,
)
from atrium.apps.raffles.settings import RafflesSettings
from atrium.context import AppContext
from atrium.core.apps import app_settings
from atrium.core.db import unit_of_work
from atrium.core.pagination import CursorCodec, CursorField, Page
from atrium.errors import AppError

log = structlog.get_logger(__name__)

PURCHASES_CURSOR = CursorCodec("raffles:my_purchases", at=CursorField.DATETIME, id=CursorField.UUID)
RAFFLE_PURCHASES_CURSOR = CursorCodec(
    "raffles:raffle_purchases", at=CursorField.DATETIME, id=CursorField.UUID
)
TICKETS_CURSOR = CursorCodec("raffles:my_tickets", at=CursorField.DATETIME, id=CursorField.UUID)


def problem(error: AppError) -> dict[str, Any]:
    """The problem details body of ``error`` (RFC 9457), as stored for replays."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "code": error.code,
    }
    if error.detail is not None:
        body["detail"] = error.detail
    return body


def purchase_view(p: Purchase, numbers: list[int] | None = None) -> PurchaseRead:
    return PurchaseRead(
        id=p.id,
        raffle_id=p.raffle_id,
        quantity=p.quantity,
        amount=p.amount,
        currency=p.currency,
        status=PurchaseStatus(p.status),
        reserved_until=p.reserved_until,
        amount_refunded=p.amount_refunded,
        created_at=p.created_at,
        ticket_numbers=numbers or [],
    )


class Answer:
    """A purchase's answer: a status, a JSON body, and whether it is a replay."""

    def __init__(self, status: int, body: dict[str, Any], replayed: bool = False) -> None:
        self.status = status
        self.body = body
        self.replayed = replayed


class PurchaseService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = app_settings(ctx.apps, "raffles", RafflesSettings)

    async def purchase(
        self, user_id: uuid.UUID, raffle_id: uuid.UUID, quantity: int, key: str
    ) -> Answer:
        """Reserve ``quantity`` tickets and start their payment (see the module).

        Raises:
            IdempotencyKeyReused: 422. IdempotencyKeyInUse: 409. PaymentsUnavailable: 503.
            QuantityTooLarge: 422.
            (Refusals of the purchase itself are answers, stored for the key.)
        """
        request_hash = hashlib.sha256(f"{raffle_id}:{quantity}".encode()).hexdigest()
        if quantity > self.settings.max_quantity_per_purchase:
            most = self.settings.max_quantity_per_purchase
            raise QuantityTooLarge(f"At most {most} tickets per purchase.")
        gateway = gateway_for(self.settings)  # 503 before anything when not configured
        try:
            reserved = await self._reserve(user_id, raffle_id, quantity, key, request_hash)
        except IntegrityError:
            # Another request with this key committed first: its answer, or "in use".
            reserved = await self._replay(user_id, key, request_hash)
        if isinstance(reserved, Answer):
            return reserved
        metadata = {
            "purchase_id": str(reserved.id),
            "raffle_id": str(raffle_id),
            "user_id": str(user_id),
        }
        try:
            intent = await gateway.create_intent(
                reserved.amount, reserved.currency, metadata, f"atrium-purchase-{reserved.id}"
            )
        except (PaymentFailed, PaymentsUnavailable) as exc:
            return await self._abandon(reserved, key, exc)
        async with unit_of_work(self.ctx.sessionmaker) as db:
            repo = PurchaseRepository(db)
            purchase = await repo.get(reserved.id, for_update=True)
            assert purchase is not None
            purchase.payment_intent_id = intent.id
            purchase.client_secret = intent.client_secret
            numbers = (await repo.ticket_numbers([purchase.id])).get(purchase.id, [])
            body = PurchaseCreated(
                **purchase_view(purchase, numbers).model_dump(),
                payment_intent_id=intent.id,
                client_secret=intent.client_secret,
            ).model_dump(mode="json")
            stored = await repo.idempotency(user_id, key)
            if stored is not None:
                stored.status_code, stored.response = 201, body
        return Answer(201, body)

    async def _replay(self, user_id: uuid.UUID, key: str, request_hash: str) -> Answer:
        async with self.ctx.sessionmaker() as db:
            stored = await PurchaseRepository(db).idempotency(user_id, key)
        if stored is None or stored.status_code is None or stored.response is None:
            raise IdempotencyKeyInUse()
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused()
        return Answer(stored.status_code, stored.response, replayed=True)

    async def _reserve(
        self, user_id: uuid.UUID, raffle_id: uuid.UUID, quantity: int, key: str, request_hash: str
    ) -> Purchase | Answer:
        now = self.ctx.clock.now()
        async with unit_of_work(self.ctx.sessionmaker) as db:
            repo = PurchaseRepository(db)
            stored = await repo.idempotency(user_id, key)
            if stored is not None:
                if stored.request_hash != request_hash:
                    raise IdempotencyKeyReused()
                if stored.status_code is None or stored.response is None:
                    raise IdempotencyKeyInUse()
                return Answer(stored.status_code, stored.response, replayed=True)
            claim = IdempotencyKey(
                user_id=user_id, key=key, request_hash=request_hash, created_at=now
            )
            db.add(claim)
            await db.flush()
            try:
                purchase = await self._take(repo, user_id, raffle_id, quantity)
            except (RaffleNotFound, RaffleNotOpen, TicketsUnavailable, AccountLimitReached) as exc:
                claim.status_code, claim.response = exc.status, problem(exc)
                return Answer(exc.status, claim.response)
            return purchase

    async def _take(
        self, repo: PurchaseRepository, user_id: uuid.UUID, raffle_id: uuid.UUID, quantity: int
    ) -> Purchase:
        # Locks in one order everywhere, holding then raffle. The raffle row, which every
        # purchase of the raffle queues on, is updated by the last statement before the
        # commit, so it is held for one round trip: the purchase is inserted before (at the
        # price read here, which the UPDATE checks), and a refusal undoes the holding and
        # the purchase by hand (no savepoint to release under the lock). See
        # docs/benchmarks.md, "Raffles".
        now = self.ctx.clock.now()
        raffle = await RaffleRepository(repo.db).get(raffle_id)
        if raffle is None or raffle.status == RaffleStatus.draft.value:
            raise RaffleNotFound()
        if (
            raffle.status != RaffleStatus.open.value
            or not raffle.opens_at <= now < raffle.closes_at
        ):
            raise RaffleNotOpen(f"The raffle is {raffle.status}.")
        maximum = raffle.max_per_account  # fixed once the raffle is open
        if not await repo.hold(raffle_id, user_id, quantity, maximum):
            raise AccountLimitReached(
                f"One account may hold at most {maximum} tickets of this raffle."
            )
        price = raffle.ticket_price  # fixed once the raffle is open; the UPDATE checks it
        purchase = Purchase(
            id=uuid.uuid4(),
            raffle_id=raffle_id,
            user_id=user_id,
            quantity=quantity,
            amount=quantity * price,
            currency=raffle.currency,
            status=PurchaseStatus.reserved.value,
            holds_reservation=True,
            amount_refunded=0,
            reserved_until=now + timedelta(minutes=self.settings.reservation_minutes),
            created_at=now,
        )
        repo.db.add(purchase)
        await repo.db.flush()
        if await repo.take(raffle_id, quantity, now, reserve=True, price=price) is None:
            await repo.db.delete(purchase)
            await repo.unhold(raffle_id, user_id, quantity)
            fresh = await RaffleRepository(repo.db).get(raffle_id)
            if fresh is None or fresh.status != RaffleStatus.open.value:
                raise RaffleNotOpen("The raffle closed meanwhile.")
            left = fresh.total_tickets - fresh.tickets_sold - fresh.tickets_reserved
            raise TicketsUnavailable(f"{left} tickets are left.")
        return purchase

    async def _abandon(self, reserved: Purchase, key: str, error: AppError) -> Answer:
        """Stripe refused or failed: give the reservation back; store a refusal as the
        key's answer, forget the key when Stripe could not be reached (retry allowed)."""
        assert reserved.user_id is not None
        async with unit_of_work(self.ctx.sessionmaker) as db:
            repo = PurchaseRepository(db)
            await repo.release(reserved.id, self.ctx.clock.now(), PurchaseStatus.failed)
            if isinstance(error, PaymentFailed):
                stored = await repo.idempotency(reserved.user_id, key)
                if stored is not None:
                    stored.status_code, stored.response = error.status, problem(error)
            else:
                await repo.forget_idempotency(reserved.user_id, key)
        if isinstance(error, PaymentsUnavailable):
            raise error
        return Answer(error.status, problem(error))

    async def purchases_of(
        self, user_id: uuid.UUID, limit: int, cursor: str | None
    ) -> Page[PurchaseRead]:
        after = PURCHASES_CURSOR.decode(cursor) if cursor else None
        async with self.ctx.sessionmaker() as db:
            repo = PurchaseRepository(db)
            rows = await repo.of_user(user_id, limit + 1, after)
            numbers = await repo.ticket_numbers([p.id for p in rows[:limit]])
        return PURCHASES_CURSOR.page(
            rows,
            limit,
            lambda p: {"at": p.created_at, "id": p.id},
            lambda p: purchase_view(p, numbers.get(p.id)),
        )

    async def of_raffle(
        self,
        raffle_id: uuid.UUID,
        statuses: tuple[str, ...] | None,
        limit: int,
        cursor: str | None,
        db: AsyncSession | None = None,
    ) -> Page[PurchaseAdminRead]:
        """A raffle's purchases with their buyers, newest first: two queries per page.

        Raises:
            RaffleNotFound: 404. InvalidCursor: 400.
        """
        after = RAFFLE_PURCHASES_CURSOR.decode(cursor) if cursor else None
        async with contextlib.AsyncExitStack() as stack:
            if db is None:  # the caller's session when it has one (one lock on SQLite)
                db = await stack.enter_async_context(self.ctx.sessionmaker())
            if await RaffleRepository(db).get(raffle_id) is None:
                raise RaffleNotFound()
            repo = PurchaseRepository(db)
            rows = await repo.page_of_raffle(raffle_id, statuses, limit + 1, after)
            numbers = await repo.ticket_numbers([p.id for p, _ in rows[:limit]])

        def item(row: tuple[Purchase, str | None]) -> PurchaseAdminRead:
            p, email = row
            return PurchaseAdminRead(
                **purchase_view(p, numbers.get(p.id)).model_dump(),
                user_id=p.user_id,
                email=email,
                payment_intent_id=p.payment_intent_id,
                paid_at=p.paid_at,
                refunded_at=p.refunded_at,
            )

        return RAFFLE_PURCHASES_CURSOR.page(
            rows, limit, lambda r: {"at": r[0].created_at, "id": r[0].id}, item
        )

    async def raffle_titles(self, raffle_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The title of each raffle among ``raffle_ids`` (one query)."""
        async with self.ctx.sessionmaker() as db:
            return await RaffleRepository(db).titles(raffle_ids)

    async def tickets_of(
        self, user_id: uuid.UUID, limit: int, cursor: str | None
    ) -> Page[TicketRead]:
        after = TICKETS_CURSOR.decode(cursor) if cursor else None
        async with self.ctx.sessionmaker() as db:
            rows = await PurchaseRepository(db).tickets_of_user(user_id, limit + 1, after)
        return TICKETS_CURSOR.page(
            rows,
            limit,
            lambda t: {"at": t.issued_at, "id": t.id},
            lambda t: TicketRead(
                id=t.id,
                raffle_id=t.raffle_id,
                number=t.number,
                purchase_id=t.purchase_id,
                issued_at=t.issued_at,
            ),
        )
