"""HTTP routes of raffles: /api/v1/admin/raffles* (``raffles:manage``) and the public
/api/v1/raffles* (no authentication: anyone may see published raffles and their draws)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from atrium.apps.raffles.beacon import beacon_for
from atrium.apps.raffles.dependencies import RafflesDraw, RafflesManage
from atrium.apps.raffles.drawing import draw_raffle
from atrium.apps.raffles.exceptions import (
    BeaconUnavailable,
    InvalidImage,
    InvalidSchedule,
    InvalidTransition,
    RaffleNotEditable,
    RaffleNotFound,
)
from atrium.apps.raffles.models import PurchaseStatus, RaffleStatus
from atrium.apps.raffles.purchases import PurchaseService
from atrium.apps.raffles.repository import PUBLIC_STATUSES
from atrium.apps.raffles.schemas import (
    DrawLogEntryRead,
    DrawRecord,
    LedgerEntry,
    PurchaseAdminRead,
    RaffleAdminRead,
    RaffleCreate,
    RaffleRead,
    RaffleSort,
    RaffleUpdate,
)
from atrium.apps.raffles.service import RaffleService
from atrium.apps.raffles.settings import RafflesSettings
from atrium.context import Ctx
from atrium.core.apps import app_settings
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.exceptions import PermissionDenied

admin_router = APIRouter(prefix="/admin/raffles", tags=["raffles: admin"])
public_router = APIRouter(prefix="/raffles", tags=["raffles"])

_AUTH = (NotAuthenticated, InvalidToken, PermissionDenied)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1024)]


@admin_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RaffleAdminRead,
    responses=problem_responses(*_AUTH, InvalidSchedule, InvalidImage, ValidationFailed),
)
async def create_raffle(
    body: RaffleCreate, caller: RafflesManage, db: DbSession, ctx: Ctx
) -> RaffleAdminRead:
    """Create a raffle as a draft."""
    return await RaffleService(db, ctx).create(caller, body)


@admin_router.get(
    "",
    response_model=Page[RaffleAdminRead],
    responses=problem_responses(*_AUTH, InvalidCursor, ValidationFailed),
)
async def list_raffles_admin(
    _: RafflesManage,
    db: DbSession,
    ctx: Ctx,
    status: Annotated[
        list[RaffleStatus] | None, Query(description="Default: every status.")
    ] = None,
    sort: RaffleSort = RaffleSort.created_at_desc,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RaffleAdminRead]:
    """Every raffle, drafts included, with its sales figures."""
    statuses = tuple(s.value for s in status) if status else tuple(s.value for s in RaffleStatus)
    return await RaffleService(db, ctx).admin_list(statuses, sort, limit, cursor)


@admin_router.get(
    "/{raffle_id}",
    response_model=RaffleAdminRead,
    responses=problem_responses(*_AUTH, RaffleNotFound),
)
async def get_raffle_admin(
    raffle_id: uuid.UUID, _: RafflesManage, db: DbSession, ctx: Ctx
) -> RaffleAdminRead:
    """One raffle with its sales figures and, once drawn, its draw record."""
    return await RaffleService(db, ctx).admin_get(raffle_id)


@admin_router.patch(
    "/{raffle_id}",
    response_model=RaffleAdminRead,
    responses=problem_responses(
        *_AUTH, RaffleNotFound, RaffleNotEditable, InvalidSchedule, InvalidImage, ValidationFailed
    ),
)
async def update_raffle(
    raffle_id: uuid.UUID, body: RaffleUpdate, caller: RafflesManage, db: DbSession, ctx: Ctx
) -> RaffleAdminRead:
    """Change a raffle; the terms buyers rely on only before it opens."""
    return await RaffleService(db, ctx).update(caller, raffle_id, body)


@admin_router.post(
    "/{raffle_id}/publish",
    response_model=RaffleAdminRead,
    responses=problem_responses(*_AUTH, RaffleNotFound, InvalidTransition, InvalidSchedule),
)
async def publish_raffle(
    raffle_id: uuid.UUID, caller: RafflesManage, db: DbSession, ctx: Ctx
) -> RaffleAdminRead:
    """Publish a draft: commit to the draw (SHA-256 of a secret seed, beacon round)."""
    return await RaffleService(db, ctx).publish(caller, raffle_id)


@admin_router.post(
    "/{raffle_id}/cancel",
    response_model=RaffleAdminRead,
    responses=problem_responses(*_AUTH, RaffleNotFound, InvalidTransition),
)
async def cancel_raffle(
    raffle_id: uuid.UUID, caller: RafflesManage, db: DbSession, ctx: Ctx
) -> RaffleAdminRead:
    """Cancel a raffle not yet drawn; paid purchases are refunded."""
    return await RaffleService(db, ctx).cancel(caller, raffle_id)


@admin_router.post(
    "/{raffle_id}/close",
    response_model=RaffleAdminRead,
    responses=problem_responses(*_AUTH, RaffleNotFound, InvalidTransition),
)
async def close_raffle_now(
    raffle_id: uuid.UUID, caller: RafflesManage, db: DbSession, ctx: Ctx
) -> RaffleAdminRead:
    """Close an open raffle now: its ledger is frozen; the draw waits for its beacon round."""
    return await RaffleService(db, ctx).close(caller, raffle_id)


@admin_router.get(
    "/{raffle_id}/purchases",
    response_model=Page[PurchaseAdminRead],
    responses=problem_responses(*_AUTH, RaffleNotFound, InvalidCursor, ValidationFailed),
)
async def list_raffle_purchases(
    raffle_id: uuid.UUID,
    _: RafflesManage,
    ctx: Ctx,
    status: Annotated[
        list[PurchaseStatus] | None, Query(description="Default: every status.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PurchaseAdminRead]:
    """A raffle's purchases with their buyers and payments, newest first."""
    statuses = tuple(s.value for s in status) if status else None
    return await PurchaseService(ctx).of_raffle(raffle_id, statuses, limit, cursor)


@admin_router.post(
    "/{raffle_id}/draw",
    response_model=DrawRecord,
    responses=problem_responses(*_AUTH, RaffleNotFound, InvalidTransition, BeaconUnavailable),
)
async def draw_now(raffle_id: uuid.UUID, _: RafflesDraw, ctx: Ctx) -> DrawRecord:
    """Draw a closed raffle now (the worker does it on its own once the round is out)."""
    beacon = beacon_for(app_settings(ctx.apps, "raffles", RafflesSettings))
    # The beacon is asked outside any transaction; the draw is written in its own.
    drawn = await draw_raffle(ctx.sessionmaker, beacon, raffle_id, ctx.clock.now())
    if drawn is None:
        raise BeaconUnavailable("The beacon round is not out yet.", retry_after=5)
    async with ctx.sessionmaker() as db:
        return await RaffleService(db, ctx).draw(raffle_id)


# --- public: no authentication ------------------------------------------------------------


@public_router.get(
    "",
    response_model=Page[RaffleRead],
    responses=problem_responses(InvalidCursor, ValidationFailed),
)
async def list_raffles(  # public
    db: DbSession,
    ctx: Ctx,
    status: Annotated[
        list[RaffleStatus] | None,
        Query(description="Default: every published status. `draft` matches nothing."),
    ] = None,
    closing_soon: Annotated[
        bool, Query(description="Only open raffles closing within `closing_soon_hours`.")
    ] = False,
    price_min: Annotated[int | None, Query(ge=0, le=10**12, description="Minor units.")] = None,
    price_max: Annotated[int | None, Query(ge=0, le=10**12, description="Minor units.")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    sort: RaffleSort = RaffleSort.closes_at,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RaffleRead]:
    """Published raffles: filter by status, closing soon, price; sort; cursor pages."""
    statuses = None
    if status:
        statuses = tuple(s.value for s in status if s.value in PUBLIC_STATUSES) or ("",)
    return await RaffleService(db, ctx).public_list(
        statuses,
        closing_soon,
        price_min,
        price_max,
        currency.upper() if currency else None,
        sort,
        limit,
        cursor,
    )


@public_router.get(
    "/draw-log",
    response_model=Page[DrawLogEntryRead],
    responses=problem_responses(InvalidCursor, ValidationFailed),
)
async def draw_log(  # public
    db: DbSession, ctx: Ctx, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[DrawLogEntryRead]:
    """The public hash-chained log of every commitment, draw and cancellation."""
    return await RaffleService(db, ctx).draw_log(limit, cursor)


@public_router.get(
    "/{raffle_id}", response_model=RaffleRead, responses=problem_responses(RaffleNotFound)
)
async def get_raffle(raffle_id: uuid.UUID, db: DbSession, ctx: Ctx) -> RaffleRead:  # public
    """One published raffle: tickets sold and remaining, the commitment, the draw."""
    return await RaffleService(db, ctx).public_get(raffle_id)


@public_router.get(
    "/{raffle_id}/draw", response_model=DrawRecord, responses=problem_responses(RaffleNotFound)
)
async def get_draw(raffle_id: uuid.UUID, db: DbSession, ctx: Ctx) -> DrawRecord:  # public
    """The draw record: commitment and beacon round, and once drawn the seed, beacon
    value, ledger hash, ticket count and winners."""
    return await RaffleService(db, ctx).draw(raffle_id)


@public_router.get(
    "/{raffle_id}/ledger",
    response_model=Page[LedgerEntry],
    responses=problem_responses(RaffleNotFound, InvalidCursor, ValidationFailed),
)
async def get_ledger(  # public
    raffle_id: uuid.UUID,
    db: DbSession,
    ctx: Ctx,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[LedgerEntry]:
    """The ticket ledger: every ticket's number and id (no owners), by number."""
    return await RaffleService(db, ctx).ledger(raffle_id, limit, cursor)
