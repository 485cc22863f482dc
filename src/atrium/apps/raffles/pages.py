"""The raffles application's hosted pages: the admin console's raffles pages
(``/admin/raffles``: list with sales, create, edit, publish, close, cancel, draw, the draw
record, a raffle's purchases and refunds) and the buyer's tickets in the account pages
(``/account/tickets``).

Each page requires the permission of the API route it mirrors and calls the same service
(so it shares the API's rules, errors, audit events and events); forms carry the CSRF
token of :mod:`atrium.ui.browser`. Templates: ``templates/pages/``, extending the
platform's console and account layouts; Spanish in ``locale/``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apps.raffles.beacon import beacon_for
from atrium.apps.raffles.drawing import draw_raffle
from atrium.apps.raffles.exceptions import BeaconUnavailable
from atrium.apps.raffles.models import PurchaseStatus, RaffleStatus
from atrium.apps.raffles.purchases import PurchaseService
from atrium.apps.raffles.refunds import refund_by_hand
from atrium.apps.raffles.schemas import RaffleCreate, RaffleSort, RaffleUpdate
from atrium.apps.raffles.service import BUYER_TERMS, RaffleService
from atrium.apps.raffles.settings import RafflesSettings
from atrium.context import AppContext, Ctx
from atrium.core.apps import app_settings
from atrium.core.db import DbSession
from atrium.ui.admin import authorize, invalid
from atrium.ui.browser import CsrfProtected, SignedIn
from atrium.ui.errors import on_error
from atrium.ui.rendering import redirect, render

console = APIRouter(prefix="/admin/raffles", include_in_schema=False)
account = APIRouter(prefix="/account", include_in_schema=False)

MANAGE = "raffles:manage"
DRAW = "raffles:draw"
REFUND = "raffles.payments:refund"
# Fields of the raffle form, in order (the form posts every one).
FIELDS = (
    "title",
    "description",
    "prize_description",
    "terms",
    "currency",
    "ticket_price",
    "total_tickets",
    "max_per_account",
    "prizes",
    "opens_at",
    "closes_at",
)
EDITABLE = (RaffleStatus.draft.value, RaffleStatus.scheduled.value, RaffleStatus.open.value)


def _utc(value: str) -> str | None:
    """A ``datetime-local`` value (``YYYY-MM-DDTHH:MM``, the form says UTC) as RFC 3339."""
    value = value.strip()
    return f"{value}:00+00:00" if len(value) == 16 else (value or None)


def _form_values(form: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in fields:
        raw = form.get(name)
        if raw is None:
            continue
        value = str(raw)
        values[name] = _utc(value) if name in ("opens_at", "closes_at") else value
    return values


def _local(value: datetime | None) -> str:
    """A UTC date-time as a ``datetime-local`` value."""
    return value.strftime("%Y-%m-%dT%H:%M") if value else ""


def _differs(value: Any, current: Any) -> bool:
    """Whether a posted value changes the field; the form shows dates to the minute, so a
    date left as shown is not a change."""
    if isinstance(value, datetime) and isinstance(current, datetime):
        return _local(value) != _local(current)
    return bool(value != current)


async def _detail(
    db: AsyncSession, ctx: AppContext, raffle_id: uuid.UUID, cursor: str | None = None
) -> dict[str, Any]:
    service = RaffleService(db, ctx)
    raffle = await service.admin_get(raffle_id)
    # The draw record as published (commitment, round; ledger hash once closed; seed,
    # beacon value and winners once drawn or cancelled); a draft has none.
    record = None if raffle.status is RaffleStatus.draft else await service.draw(raffle_id)
    purchases = await PurchaseService(ctx).of_raffle(raffle_id, None, 50, cursor, db)
    return {
        "section": "raffles",
        "raffle": raffle,
        "record": record,
        "purchases": purchases,
        "cursor": cursor,
        "editable": raffle.status.value in EDITABLE,
        "buyer_terms": BUYER_TERMS if raffle.status is RaffleStatus.open else frozenset(),
        "opens_at": _local(raffle.opens_at),
        "closes_at": _local(raffle.closes_at),
        "notice": None,
    }


# --- console: list and create ---------------------------------------------------------------


@console.get("")
async def raffles(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    status: Annotated[str, Query(max_length=16)] = "",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Every raffle with its sales figures (``GET /admin/raffles``), newest first."""
    authorize(browser, MANAGE)
    statuses = (
        (status,)
        if status in {s.value for s in RaffleStatus}
        else tuple(s.value for s in RaffleStatus)
    )
    page = await RaffleService(db, ctx).admin_list(statuses, RaffleSort.created_at_desc, 50, cursor)
    return render(
        request,
        "raffles/pages/raffles.html",
        {
            "section": "raffles",
            "page": page,
            "status": status,
            "statuses": [s.value for s in RaffleStatus],
            "notice": done,
        },
    )


@console.get("/new")
async def new_raffle(request: Request, browser: SignedIn) -> Response:
    """The form of a new raffle."""
    authorize(browser, MANAGE)
    defaults = {"currency": "EUR", "prizes": "1"}
    return render(request, "raffles/pages/new.html", {"section": "raffles", "values": defaults})


@console.post("", dependencies=[CsrfProtected])
async def create(request: Request, browser: SignedIn, db: DbSession, ctx: Ctx) -> Response:
    """Create a draft (``POST /admin/raffles``)."""
    caller = authorize(browser, MANAGE)
    form = await request.form()
    values = _form_values(form, FIELDS)
    raw = {name: str(form.get(name, "")) for name in FIELDS}
    on_error(request, "raffles/pages/new.html", section="raffles", values=raw)
    try:
        body = RaffleCreate.model_validate(values)
    except ValidationError as exc:
        raise invalid(exc) from exc
    raffle = await RaffleService(db, ctx).create(caller, body)
    return redirect(request, f"/admin/raffles/{raffle.id}?done=created")


# --- console: one raffle ----------------------------------------------------------------------


@console.get("/{raffle_id}")
async def raffle_detail(
    request: Request,
    raffle_id: uuid.UUID,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """One raffle: sales, the draw's commitment and record, the edit form, the actions of
    its state and its purchases (with refunds)."""
    authorize(browser, MANAGE)
    context = await _detail(db, ctx, raffle_id, cursor)
    return render(request, "raffles/pages/raffle.html", {**context, "notice": done})


async def _on_raffle_error(
    request: Request, db: AsyncSession, ctx: AppContext, raffle_id: uuid.UUID
) -> None:
    on_error(request, "raffles/pages/raffle.html", **await _detail(db, ctx, raffle_id))


@console.post("/{raffle_id}", dependencies=[CsrfProtected])
async def update(
    request: Request, raffle_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Change a raffle (``PATCH /admin/raffles/{id}``): only the fields that differ are sent,
    so an open raffle's page may change its description without touching its terms."""
    caller = authorize(browser, MANAGE)
    current = await RaffleService(db, ctx).admin_get(raffle_id)
    await _on_raffle_error(request, db, ctx, raffle_id)
    values = _form_values(await request.form(), FIELDS)
    try:
        proposed = RaffleUpdate.model_validate(values)
    except ValidationError as exc:
        raise invalid(exc) from exc
    changes = {
        name: value
        for name, value in proposed.model_dump(exclude_unset=True).items()
        if _differs(value, getattr(current, name))
    }
    if changes:
        await RaffleService(db, ctx).update(caller, raffle_id, RaffleUpdate.model_validate(changes))
    return redirect(request, f"/admin/raffles/{raffle_id}?done=saved")


@console.post("/{raffle_id}/publish", dependencies=[CsrfProtected])
async def publish(
    request: Request, raffle_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Publish a draft with its draw commitment (``POST /admin/raffles/{id}/publish``)."""
    caller = authorize(browser, MANAGE)
    await _on_raffle_error(request, db, ctx, raffle_id)
    await RaffleService(db, ctx).publish(caller, raffle_id)
    return redirect(request, f"/admin/raffles/{raffle_id}?done=published")


@console.post("/{raffle_id}/close", dependencies=[CsrfProtected])
async def close(
    request: Request, raffle_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Close an open raffle now (``POST /admin/raffles/{id}/close``)."""
    caller = authorize(browser, MANAGE)
    await _on_raffle_error(request, db, ctx, raffle_id)
    await RaffleService(db, ctx).close(caller, raffle_id)
    return redirect(request, f"/admin/raffles/{raffle_id}?done=closed")


@console.post("/{raffle_id}/cancel", dependencies=[CsrfProtected])
async def cancel(
    request: Request, raffle_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Cancel, refunding every paid purchase (``POST /admin/raffles/{id}/cancel``)."""
    caller = authorize(browser, MANAGE)
    await _on_raffle_error(request, db, ctx, raffle_id)
    await RaffleService(db, ctx).cancel(caller, raffle_id)
    return redirect(request, f"/admin/raffles/{raffle_id}?done=cancelled")


@console.post("/{raffle_id}/draw", dependencies=[CsrfProtected])
async def draw(request: Request, raffle_id: uuid.UUID, browser: SignedIn, ctx: Ctx) -> Response:
    """Draw a closed raffle whose beacon round is out (``POST /admin/raffles/{id}/draw``)."""
    authorize(browser, MANAGE, DRAW)
    # The draw writes in units of work of its own (the beacon is asked between them), so
    # the page's context is read in a session closed before it.
    async with ctx.sessionmaker() as db:
        await _on_raffle_error(request, db, ctx, raffle_id)
    beacon = beacon_for(app_settings(ctx.apps, "raffles", RafflesSettings))
    if await draw_raffle(ctx.sessionmaker, beacon, raffle_id, ctx.clock.now()) is None:
        raise BeaconUnavailable("The beacon round is not out yet.", retry_after=5)
    return redirect(request, f"/admin/raffles/{raffle_id}?done=drawn")


@console.post("/{raffle_id}/purchases/{purchase_id}/refund", dependencies=[CsrfProtected])
async def refund(
    request: Request,
    raffle_id: uuid.UUID,
    purchase_id: uuid.UUID,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
) -> Response:
    """Refund a paid purchase (``POST /admin/raffles/purchases/{id}/refund``)."""
    authorize(browser, MANAGE)
    caller = authorize(browser, REFUND)
    await _on_raffle_error(request, db, ctx, raffle_id)
    await refund_by_hand(db, ctx.clock.now(), caller, purchase_id)
    return redirect(request, f"/admin/raffles/{raffle_id}?done=refunding")


# --- account: the buyer's purchases and tickets -----------------------------------------------


@account.get("/tickets")
async def my_tickets(
    request: Request,
    browser: SignedIn,
    ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The account's purchases with their ticket numbers (``GET /users/me/purchases``)."""
    page = await PurchaseService(ctx).purchases_of(browser.user_id, 50, cursor)
    titles = await PurchaseService(ctx).raffle_titles({p.raffle_id for p in page.items})
    return render(
        request,
        "raffles/pages/tickets.html",
        {
            "section": "raffles_tickets",
            "page": page,
            "titles": titles,
            "paid": PurchaseStatus.paid.value,
        },
    )
