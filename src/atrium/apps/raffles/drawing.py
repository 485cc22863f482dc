"""Running raffles on time: opening, closing (freezing the ticket ledger) and drawing.

Each step is one conditional transition (``UPDATE … WHERE status = <from>``), so the
scheduled jobs of several workers, an administrator and a purchase racing the close
agree on one outcome. A purchase issues tickets only while the raffle row says ``open``
(the same row, locked by the UPDATE), so no ticket joins a ledger after it was hashed.
The beacon is asked outside any transaction, then the draw is written in a short one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.apps.raffles import drawlog
from atrium.apps.raffles.beacon import Beacon
from atrium.apps.raffles.draw import ledger_hash, winners
from atrium.apps.raffles.exceptions import BeaconUnavailable, InvalidTransition, RaffleNotFound
from atrium.apps.raffles.models import Raffle, RaffleStatus
from atrium.apps.raffles.repository import RaffleRepository
from atrium.audit.service import record
from atrium.core.db import unit_of_work

log = structlog.get_logger(__name__)

# Called in the unit of work that closes (releases pending reservations) or draws a
# raffle (notifies the winners): (db, raffle, now).
Hook = Callable[[AsyncSession, Raffle, datetime], Awaitable[None]]
CLOSE_HOOKS: list[Hook] = []
DRAWN_HOOKS: list[Hook] = []


async def open_raffle(db: AsyncSession, raffle_id: uuid.UUID, now: datetime) -> bool:
    """``scheduled`` → ``open`` once ``opens_at`` has come; False when not (any more) due."""
    repo = RaffleRepository(db)
    raffle = await repo.get(raffle_id)
    if raffle is None or raffle.opens_at > now:
        return False
    if not await repo.transition(
        raffle_id, [RaffleStatus.scheduled.value], RaffleStatus.open.value, updated_at=now
    ):
        return False
    await record(
        db, "raffles.opened", at=now, actor_id=None, target_type="raffle", target_id=raffle_id
    )
    return True


async def _drawn(db: AsyncSession, raffle: Raffle, value: bytes | None, now: datetime) -> None:
    """Record the winners of ``raffle`` (its ledger frozen) and log the draw."""
    assert raffle.seed is not None
    assert raffle.ledger_hash is not None
    count = raffle.ticket_count or 0
    numbers = winners(
        raffle.seed, bytes.fromhex(raffle.ledger_hash), value or b"", count, raffle.prizes
    )
    raffle.status = RaffleStatus.drawn.value
    raffle.beacon_value = value.hex() if value is not None else None
    raffle.winners = numbers
    raffle.drawn_at = raffle.updated_at = now
    await db.flush()
    data = {
        "commitment": raffle.commitment,
        "seed": raffle.seed.hex(),
        "beacon": raffle.beacon,
        "beacon_round": raffle.beacon_round,
        "beacon_value": raffle.beacon_value,
        "ledger_hash": raffle.ledger_hash,
        "ticket_count": count,
        "prizes": raffle.prizes,
        "winners": numbers,
    }
    await drawlog.append(db, raffle.id, "draw", data, now)
    await record(
        db,
        "raffles.drawn",
        at=now,
        actor_id=None,
        target_type="raffle",
        target_id=raffle.id,
        details={"winners": numbers},
    )
    for hook in DRAWN_HOOKS:
        await hook(db, raffle, now)


async def close_raffle(
    db: AsyncSession,
    raffle_id: uuid.UUID,
    now: datetime,
    *,
    early: bool = False,
    actor_id: uuid.UUID | None = None,
) -> bool:
    """``open`` → ``closed`` once ``closes_at`` has come (or now, ``early``, by an
    administrator ``actor_id``): pending reservations are released, the ledger hash is
    computed and logged. With no ticket sold the raffle is ``drawn`` at once, with no
    winner. False when not (any more) due.

    An early close changes neither ``closes_at`` nor the committed beacon round: the draw
    still waits for that round, which nobody knows before it is out.
    """
    repo = RaffleRepository(db)
    raffle = await repo.get(raffle_id)
    if raffle is None or (raffle.closes_at > now and not early):
        return False
    if not await repo.transition(
        raffle_id,
        [RaffleStatus.open.value],
        RaffleStatus.closed.value,
        closed_at=now,
        updated_at=now,
    ):
        return False
    raffle = await repo.get(raffle_id)
    assert raffle is not None
    for hook in CLOSE_HOOKS:
        await hook(db, raffle, now)
    ledger = await repo.ledger(raffle_id)
    raffle.ledger_hash = ledger_hash(ledger)
    raffle.ticket_count = len(ledger)
    await db.flush()
    data = {"ledger_hash": raffle.ledger_hash, "ticket_count": raffle.ticket_count}
    await drawlog.append(db, raffle_id, "close", data, now)
    await record(
        db,
        "raffles.closed",
        at=now,
        actor_id=actor_id,
        target_type="raffle",
        target_id=raffle_id,
        details={**data, "early": early},
    )
    if not ledger:
        await _drawn(db, raffle, None, now)
    return True


async def draw_raffle(
    sessionmaker: async_sessionmaker[AsyncSession],
    beacon: Beacon,
    raffle_id: uuid.UUID,
    now: datetime,
) -> list[int] | None:
    """Draw a ``closed`` raffle once its beacon round is out: the winning ticket numbers,
    or None when the round is not available yet.

    Raises:
        RaffleNotFound: 404. InvalidTransition: 409, the raffle is not ``closed``.
        BeaconUnavailable: 503, the beacon cannot be reached.
    """
    async with sessionmaker() as db:
        raffle = await RaffleRepository(db).get(raffle_id)
    if raffle is None:
        raise RaffleNotFound()
    if raffle.status != RaffleStatus.closed.value or raffle.beacon_round is None:
        raise InvalidTransition(f"Only a closed raffle is drawn; this one is {raffle.status}.")
    if beacon.round_time(raffle.beacon_round) > now:
        return None
    value = await beacon.value(raffle.beacon_round)
    if value is None:
        return None
    async with unit_of_work(sessionmaker) as db:
        locked = await RaffleRepository(db).get(raffle_id, for_update=True)
        if locked is None or locked.status != RaffleStatus.closed.value:
            raise InvalidTransition("The raffle was drawn or cancelled meanwhile.")
        await _drawn(db, locked, value, now)
        return list(locked.winners or [])


async def advance(
    sessionmaker: async_sessionmaker[AsyncSession], beacon: Beacon, now: datetime, batch: int = 100
) -> dict[str, int]:
    """One pass of the schedule: open, close and draw every raffle that is due (each in a
    unit of work of its own). Counts of each step; a beacon not reachable is logged and
    the draw retried next pass."""
    done = {"opened": 0, "closed": 0, "drawn": 0}
    async with sessionmaker() as db:
        repo = RaffleRepository(db)
        to_open = await repo.due(RaffleStatus.scheduled.value, Raffle.opens_at, now, batch)
        to_close = await repo.due(RaffleStatus.open.value, Raffle.closes_at, now, batch)
    for raffle_id in to_open:
        async with unit_of_work(sessionmaker) as db:
            done["opened"] += await open_raffle(db, raffle_id, now)
    for raffle_id in to_close:
        async with unit_of_work(sessionmaker) as db:
            done["closed"] += await close_raffle(db, raffle_id, now)
    async with sessionmaker() as db:
        repo = RaffleRepository(db)
        to_draw = await repo.due(RaffleStatus.closed.value, Raffle.closes_at, now, batch)
    for raffle_id in to_draw:
        try:
            drawn = await draw_raffle(sessionmaker, beacon, raffle_id, now)
        except (BeaconUnavailable, InvalidTransition) as exc:
            log.warning("raffle_draw_postponed", raffle_id=str(raffle_id), reason=str(exc))
            continue
        done["drawn"] += drawn is not None
    return done
