"""The rules of raffles: creation, changes, publication (the draw's commitment),
cancellation, and the public and administrative lists."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles import drawlog
from atrium.apps.raffles.beacon import beacon_for
from atrium.apps.raffles.draw import SEED_BYTES, commitment
from atrium.apps.raffles.drawing import Hook, close_raffle
from atrium.apps.raffles.exceptions import (
    InvalidImage,
    InvalidSchedule,
    InvalidTransition,
    RaffleNotEditable,
    RaffleNotFound,
)
from atrium.apps.raffles.models import Raffle, RaffleStatus
from atrium.apps.raffles.repository import PUBLIC_STATUSES, RaffleFilter, RaffleRepository
from atrium.apps.raffles.schemas import (
    DrawLogEntryRead,
    DrawRecord,
    LedgerEntry,
    RaffleAdminRead,
    RaffleCreate,
    RaffleRead,
    RaffleSort,
    RaffleUpdate,
    SalesFigures,
)
from atrium.apps.raffles.settings import RafflesSettings
from atrium.apps.raffles.views import admin_view, draw_record, log_view, public_view
from atrium.audit.service import record
from atrium.context import AppContext
from atrium.core.apps import app_settings
from atrium.core.pagination import CursorCodec, CursorField, Page
from atrium.rbac.authorized import Authorized

# Terms buyers rely on: fixed once the raffle opens.
BUYER_TERMS = frozenset(
    {
        "currency",
        "ticket_price",
        "total_tickets",
        "max_per_account",
        "prizes",
        "opens_at",
        "closes_at",
        "terms",
    }
)
_EDITABLE = (RaffleStatus.draft.value, RaffleStatus.scheduled.value, RaffleStatus.open.value)
_CANCELLABLE = (
    RaffleStatus.draft.value,
    RaffleStatus.scheduled.value,
    RaffleStatus.open.value,
    RaffleStatus.closed.value,
)
_DATETIME_CURSORS = {
    sort: CursorCodec(f"raffles:{sort.value}", v=CursorField.DATETIME, id=CursorField.UUID)
    for sort in (RaffleSort.closes_at, RaffleSort.created_at_desc)
}
_INT_CURSORS = {
    sort: CursorCodec(f"raffles:{sort.value}", v=CursorField.INT, id=CursorField.UUID)
    for sort in (RaffleSort.price, RaffleSort.price_desc)
}
CURSORS: dict[RaffleSort, CursorCodec] = {**_DATETIME_CURSORS, **_INT_CURSORS}
LOG_CURSOR = CursorCodec("raffles:draw_log", seq=CursorField.INT)
LEDGER_CURSOR = CursorCodec("raffles:ledger", number=CursorField.INT)


def _position(sort: RaffleSort, raffle: Raffle) -> dict[str, Any]:
    value: Any = {
        RaffleSort.closes_at: raffle.closes_at,
        RaffleSort.created_at_desc: raffle.created_at,
        RaffleSort.price: raffle.ticket_price,
        RaffleSort.price_desc: raffle.ticket_price,
    }[sort]
    return {"v": value, "id": raffle.id}


class RaffleService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = RaffleRepository(db)
        self.settings = app_settings(ctx.apps, "raffles", RafflesSettings)

    # --- administration ---------------------------------------------------------------

    async def _check_images(self, file_ids: list[uuid.UUID]) -> None:
        types = await self.repo.image_types(file_ids)
        for file_id in file_ids:
            if not types.get(file_id, "").startswith("image/"):
                raise InvalidImage(f"File {file_id} is not an uploaded image.")

    def _check_schedule(self, raffle: Raffle) -> None:
        if raffle.opens_at >= raffle.closes_at:
            raise InvalidSchedule("opens_at must come before closes_at.")
        if raffle.status != RaffleStatus.draft.value and raffle.closes_at <= self.ctx.clock.now():
            raise InvalidSchedule("closes_at must be in the future.")
        if raffle.max_per_account > raffle.total_tickets or raffle.prizes > raffle.total_tickets:
            raise InvalidSchedule("max_per_account and prizes cannot exceed total_tickets.")

    async def create(self, caller: Authorized, body: RaffleCreate) -> RaffleAdminRead:
        """A new ``draft`` raffle.

        Raises:
            InvalidSchedule: 422, dates out of order or limits above the ticket count.
            InvalidImage: 422, an image id is not an uploaded image.
        """
        await self._check_images(body.image_file_ids)
        now = self.ctx.clock.now()
        values = body.model_dump()
        values["image_file_ids"] = [str(i) for i in body.image_file_ids]
        raffle = Raffle(
            id=uuid.uuid4(),
            status=RaffleStatus.draft.value,
            tickets_sold=0,
            tickets_reserved=0,
            created_by=caller.user_id,
            created_at=now,
            updated_at=now,
            **values,
        )
        self._check_schedule(raffle)
        self.db.add(raffle)
        await self.db.flush()
        await self._audit(caller, "raffles.created", raffle, after={"title": raffle.title})
        return admin_view(
            raffle, SalesFigures(tickets_sold=0, tickets_reserved=0, gross=0, refunded=0)
        )

    async def _locked(self, raffle_id: uuid.UUID) -> Raffle:
        raffle = await self.repo.get(raffle_id, for_update=True)
        if raffle is None:
            raise RaffleNotFound()
        return raffle

    async def update(
        self, caller: Authorized, raffle_id: uuid.UUID, body: RaffleUpdate
    ) -> RaffleAdminRead:
        """Change fields; the terms buyers rely on only before the raffle opens.

        Raises:
            RaffleNotFound: 404. RaffleNotEditable: 409. InvalidSchedule, InvalidImage: 422.
        """
        raffle = await self._locked(raffle_id)
        changes = body.model_dump(exclude_unset=True)
        if any(v is None for v in changes.values()):
            raise InvalidSchedule("A field cannot be set to null.")
        if raffle.status not in _EDITABLE or (
            raffle.status == RaffleStatus.open.value and BUYER_TERMS & changes.keys()
        ):
            raise RaffleNotEditable(
                f"A {raffle.status} raffle cannot change {', '.join(sorted(changes))}."
            )
        if "image_file_ids" in changes:
            await self._check_images(body.image_file_ids or [])
            changes["image_file_ids"] = [str(i) for i in body.image_file_ids or []]
        before = {k: _jsonable(getattr(raffle, k)) for k in changes}
        for name, value in changes.items():
            setattr(raffle, name, value)
        self._check_schedule(raffle)
        now = self.ctx.clock.now()
        raffle.updated_at = now
        if raffle.status == RaffleStatus.scheduled.value and "closes_at" in changes:
            # The beacon round follows the close; the new round is logged next to the
            # unchanged commitment.
            raffle.beacon_round = beacon_for(self.settings).round_after(raffle.closes_at)
            await self._log_commitment(raffle)
        await self.db.flush()
        after = {k: _jsonable(getattr(raffle, k)) for k in changes}
        await self._audit(caller, "raffles.updated", raffle, before=before, after=after)
        return admin_view(raffle, await self.repo.figures(raffle))

    async def publish(self, caller: Authorized, raffle_id: uuid.UUID) -> RaffleAdminRead:
        """``draft`` → ``scheduled`` (or ``open`` when ``opens_at`` has come): draws the
        secret seed, publishes ``SHA-256(seed)``, the beacon and its round after the close,
        and appends the commitment to the draw log.

        Raises:
            RaffleNotFound: 404. InvalidTransition: 409, not a draft. InvalidSchedule: 422.
        """
        raffle = await self._locked(raffle_id)
        if raffle.status != RaffleStatus.draft.value:
            raise InvalidTransition(
                f"Only a draft can be published; this raffle is {raffle.status}."
            )
        now = self.ctx.clock.now()
        opening = raffle.opens_at <= now
        raffle.status = (RaffleStatus.open if opening else RaffleStatus.scheduled).value
        self._check_schedule(raffle)
        beacon = beacon_for(self.settings)
        raffle.seed = secrets.token_bytes(SEED_BYTES)
        raffle.commitment = commitment(raffle.seed)
        raffle.beacon = beacon.name
        raffle.beacon_round = beacon.round_after(raffle.closes_at)
        raffle.published_at = raffle.updated_at = now
        await self.db.flush()
        await self._log_commitment(raffle)
        await self._audit(
            caller,
            "raffles.published",
            raffle,
            after={"status": raffle.status, "commitment": raffle.commitment},
        )
        return admin_view(raffle, await self.repo.figures(raffle))

    async def _log_commitment(self, raffle: Raffle) -> None:
        data = {
            "commitment": raffle.commitment,
            "beacon": raffle.beacon,
            "beacon_round": raffle.beacon_round,
            "closes_at": drawlog.iso(raffle.closes_at),
            "total_tickets": raffle.total_tickets,
            "prizes": raffle.prizes,
        }
        await drawlog.append(self.db, raffle.id, "commitment", data, self.ctx.clock.now())

    async def cancel(self, caller: Authorized | None, raffle_id: uuid.UUID) -> RaffleAdminRead:
        """Cancel a raffle not yet drawn: its seed is published (and logged), pending
        reservations are released and every paid purchase is refunded by the worker.

        Raises:
            RaffleNotFound: 404. InvalidTransition: 409, already drawn or cancelled.
        """
        raffle = await self._locked(raffle_id)
        if raffle.status not in _CANCELLABLE:
            raise InvalidTransition(f"A {raffle.status} raffle cannot be cancelled.")
        published = raffle.seed is not None
        now = self.ctx.clock.now()
        raffle.status = RaffleStatus.cancelled.value
        raffle.cancelled_at = raffle.updated_at = now
        await self.db.flush()
        if published:
            data = {
                "commitment": raffle.commitment,
                "seed": raffle.seed.hex() if raffle.seed else None,
            }
            await drawlog.append(self.db, raffle.id, "cancellation", data, now)
        for hook in CANCEL_HOOKS:
            await hook(self.db, raffle, now)
        await self._audit(caller, "raffles.cancelled", raffle, after={"status": raffle.status})
        return admin_view(raffle, await self.repo.figures(raffle))

    async def close(self, caller: Authorized, raffle_id: uuid.UUID) -> RaffleAdminRead:
        """``open`` → ``closed`` now, before ``closes_at``: the ticket ledger is frozen and
        logged as at a close on time; the draw still waits for the committed beacon round
        (see :func:`drawing.close_raffle`).

        Raises:
            RaffleNotFound: 404. InvalidTransition: 409, the raffle is not open.
        """
        raffle = await self.repo.get(raffle_id)
        if raffle is None:
            raise RaffleNotFound()
        if raffle.status != RaffleStatus.open.value or not await close_raffle(
            self.db, raffle_id, self.ctx.clock.now(), early=True, actor_id=caller.user_id
        ):
            raise InvalidTransition(f"Only an open raffle is closed; this one is {raffle.status}.")
        return await self.admin_get(raffle_id)

    async def admin_get(self, raffle_id: uuid.UUID) -> RaffleAdminRead:
        raffle = await self.repo.get(raffle_id)
        if raffle is None:
            raise RaffleNotFound()
        return admin_view(raffle, await self.repo.figures(raffle), await self._draw(raffle))

    async def admin_list(
        self, statuses: tuple[str, ...], sort: RaffleSort, limit: int, cursor: str | None
    ) -> Page[RaffleAdminRead]:
        """Every raffle (drafts too) with its sales figures: two queries per page."""
        codec = CURSORS[sort]
        after = codec.decode(cursor) if cursor else None
        rows = await self.repo.page(RaffleFilter(statuses=statuses), sort, limit + 1, after)
        sales = await self.repo.sales([r.id for r in rows[:limit]])

        def item(r: Raffle) -> RaffleAdminRead:
            gross, refunded = sales.get(r.id, (0, 0))
            figures = SalesFigures(
                tickets_sold=r.tickets_sold,
                tickets_reserved=r.tickets_reserved,
                gross=gross,
                refunded=refunded,
            )
            return admin_view(r, figures)

        return codec.page(rows, limit, lambda r: _position(sort, r), item)

    # --- public -----------------------------------------------------------------------

    async def public_list(
        self,
        statuses: tuple[str, ...] | None,
        closing_soon: bool,
        price_min: int | None,
        price_max: int | None,
        currency: str | None,
        sort: RaffleSort,
        limit: int,
        cursor: str | None,
    ) -> Page[RaffleRead]:
        """Published raffles (never drafts); one query per page."""
        codec = CURSORS[sort]
        after = codec.decode(cursor) if cursor else None
        closes_before = None
        if closing_soon:
            statuses = (RaffleStatus.open.value,)
            closes_before = self.ctx.clock.now() + timedelta(hours=self.settings.closing_soon_hours)
        filters = RaffleFilter(
            statuses=statuses or PUBLIC_STATUSES,
            closes_before=closes_before,
            price_min=price_min,
            price_max=price_max,
            currency=currency,
        )
        rows = await self.repo.page(filters, sort, limit + 1, after)
        return codec.page(rows, limit, lambda r: _position(sort, r), public_view)

    async def _public(self, raffle_id: uuid.UUID) -> Raffle:
        raffle = await self.repo.get(raffle_id)
        if raffle is None or raffle.status == RaffleStatus.draft.value:
            raise RaffleNotFound()
        return raffle

    async def _draw(self, raffle: Raffle) -> DrawRecord | None:
        if raffle.status not in (RaffleStatus.drawn.value, RaffleStatus.cancelled.value):
            return None
        ids = await self.repo.ticket_ids(raffle.id, raffle.winners or [])
        return draw_record(raffle, self.settings.beacon_url, ids)

    async def public_get(self, raffle_id: uuid.UUID) -> RaffleRead:
        """Raises: RaffleNotFound: 404, also for a draft."""
        raffle = await self._public(raffle_id)
        return public_view(raffle, await self._draw(raffle))

    async def draw(self, raffle_id: uuid.UUID) -> DrawRecord:
        """Raises: RaffleNotFound: 404, also for a draft."""
        raffle = await self._public(raffle_id)
        ids = await self.repo.ticket_ids(raffle.id, raffle.winners or [])
        return draw_record(raffle, self.settings.beacon_url, ids)

    async def ledger(
        self, raffle_id: uuid.UUID, limit: int, cursor: str | None
    ) -> Page[LedgerEntry]:
        """The raffle's tickets by number (no owners). Raises: RaffleNotFound: 404."""
        raffle = await self._public(raffle_id)
        after = LEDGER_CURSOR.decode(cursor)["number"] if cursor else None
        rows = await self.repo.ledger_page(raffle.id, limit + 1, after)
        return LEDGER_CURSOR.page(
            rows,
            limit,
            lambda r: {"number": r[0]},
            lambda r: LedgerEntry(number=r[0], ticket_id=r[1]),
        )

    async def draw_log(self, limit: int, cursor: str | None) -> Page[DrawLogEntryRead]:
        """The draw log from its first entry, in order (keyset on ``seq``)."""
        after = LOG_CURSOR.decode(cursor)["seq"] if cursor else None
        entries = await self.repo.draw_log(limit + 1, after)
        return LOG_CURSOR.page(entries, limit, lambda e: {"seq": e.seq}, log_view)

    async def _audit(
        self, caller: Authorized | None, action: str, raffle: Raffle, **extra: Any
    ) -> None:
        await record(
            self.db,
            action,
            at=self.ctx.clock.now(),
            actor_id=caller.user_id if caller else None,
            target_type="raffle",
            target_id=raffle.id,
            **extra,
        )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# Called in the cancellation's unit of work (purchases register theirs: release, refund).
CANCEL_HOOKS: list[Hook] = []
