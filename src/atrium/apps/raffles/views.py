"""Shaping raffles into their public and administrative views."""

from __future__ import annotations

import uuid

from atrium.apps.raffles.drawlog import iso
from atrium.apps.raffles.models import DrawLogEntry, Raffle, RaffleStatus
from atrium.apps.raffles.schemas import (
    DrawLogEntryRead,
    DrawRecord,
    RaffleAdminRead,
    RaffleRead,
    SalesFigures,
    WinningTicket,
)

_REVEALED = (RaffleStatus.drawn.value, RaffleStatus.cancelled.value)


def draw_record(
    raffle: Raffle, beacon_url: str | None, winner_ids: dict[int, uuid.UUID]
) -> DrawRecord:
    """The draw as published; the seed only once the raffle is drawn or cancelled."""
    revealed = raffle.status in _REVEALED
    winners = None
    if raffle.winners is not None:
        winners = [WinningTicket(number=n, ticket_id=winner_ids[n]) for n in raffle.winners]
    return DrawRecord(
        raffle_id=raffle.id,
        status=RaffleStatus(raffle.status),
        commitment=raffle.commitment,
        seed=raffle.seed.hex() if revealed and raffle.seed is not None else None,
        beacon=raffle.beacon,
        beacon_url=beacon_url if raffle.beacon else None,
        beacon_round=raffle.beacon_round,
        beacon_value=raffle.beacon_value,
        ledger_hash=raffle.ledger_hash,
        ticket_count=raffle.ticket_count,
        prizes=raffle.prizes,
        winners=winners,
        drawn_at=raffle.drawn_at,
    )


def public_view(raffle: Raffle, draw: DrawRecord | None = None) -> RaffleRead:
    return RaffleRead(
        id=raffle.id,
        title=raffle.title,
        description=raffle.description,
        prize_description=raffle.prize_description,
        terms=raffle.terms,
        image_file_ids=[uuid.UUID(i) for i in raffle.image_file_ids],
        currency=raffle.currency,
        ticket_price=raffle.ticket_price,
        total_tickets=raffle.total_tickets,
        max_per_account=raffle.max_per_account,
        prizes=raffle.prizes,
        opens_at=raffle.opens_at,
        closes_at=raffle.closes_at,
        status=RaffleStatus(raffle.status),
        tickets_sold=raffle.tickets_sold,
        tickets_remaining=raffle.total_tickets - raffle.tickets_sold - raffle.tickets_reserved,
        commitment=raffle.commitment,
        beacon=raffle.beacon,
        beacon_round=raffle.beacon_round,
        draw=draw,
    )


def admin_view(
    raffle: Raffle, sales: SalesFigures, draw: DrawRecord | None = None
) -> RaffleAdminRead:
    base = public_view(raffle, draw).model_dump()
    return RaffleAdminRead(
        **base, sales=sales, created_at=raffle.created_at, updated_at=raffle.updated_at
    )


def log_view(e: DrawLogEntry) -> DrawLogEntryRead:
    return DrawLogEntryRead(
        seq=e.seq,
        raffle_id=e.raffle_id,
        kind=e.kind,
        at=iso(e.at),
        data=e.data,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )
