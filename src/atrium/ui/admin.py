"""The admin console (``/admin``): users, roles, audit trail, outbox, health, charts.

Every page requires the permission of the API route it mirrors and calls the same
service, so the console is exactly as fast and as strict as the admin API (keyset pages,
no-escalation rules, last-superadmin protection, audit events).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed
from atrium.health.router import readiness
from atrium.mail.repository import OutboxRepository
from atrium.models import OutboxMessage, OutboxStatus
from atrium.rbac.dependencies import Authorized, check_role_requirement
from atrium.rbac.exceptions import PermissionDenied
from atrium.ui.browser import Browser, CsrfProtected, LoginRequired, SignedIn, load_browser
from atrium.ui.rendering import redirect, render
from atrium.ui.repository import StatsRepository


async def _role_assurance(request: Request) -> None:
    """The API's rule for holders of a role that requires MFA (``role.mfa_required``, see
    :func:`atrium.rbac.dependencies.require`), on every console page: at aal1 with a
    factor, a step-up (a GET is sent to ``/account/reauth``, which returns to it); without
    one after the grace period, 403 ``mfa_enrollment_required``. Free for other accounts
    (the grants are cached)."""
    ctx = request.app.state.ctx
    browser = await load_browser(request, ctx)
    if browser is None:
        raise LoginRequired()
    grants = await ctx.rbac.grants_of(browser.user_id)
    if grants.mfa_required_roles and browser.principal.assurance.aal < 2:
        await check_role_requirement(browser.principal, ctx)


ConsoleAssurance = Depends(_role_assurance)
"""Add to ``dependencies=[...]`` of every console router."""

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[ConsoleAssurance])

RANGES = (7, 30, 90)


def authorize(browser: Browser, *permissions: str) -> Authorized:
    """The caller as the API's ``require(...)`` sees it.

    Raises:
        PermissionDenied: 403, a permission is missing.
    """
    missing = [p for p in permissions if p not in browser.permissions]
    if missing:
        raise PermissionDenied(missing)
    return Authorized(
        principal=browser.principal, roles=browser.roles, permissions=browser.permissions
    )


def invalid(exc: ValidationError) -> ValidationFailed:
    return ValidationFailed("; ".join(str(e["msg"]) for e in exc.errors()))


# --- dashboard: charts, outbox, health ------------------------------------------------------


@router.get("")
async def dashboard(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Response:
    """Registrations, sign-ins and active accounts per day over ``days`` days."""
    authorize(browser, "users:read")
    if days not in RANGES:
        days = 30
    today = ctx.clock.now().date()
    since_day = today - timedelta(days=days - 1)
    since = datetime(since_day.year, since_day.month, since_day.day, tzinfo=ctx.clock.now().tzinfo)
    stats = StatsRepository(db)
    registrations = await stats.registrations_per_day(since)
    logins_ok = await stats.events_per_day("auth.login_succeeded", since)
    logins_failed = await stats.events_per_day("auth.login_failed", since)
    active = await stats.active_users_per_day(since)
    labels = [(since_day + timedelta(days=i)).isoformat() for i in range(days)]
    series = {
        "days": labels,
        "registrations": [registrations.get(d, 0) for d in labels],
        "logins_succeeded": [logins_ok.get(d, 0) for d in labels],
        "logins_failed": [logins_failed.get(d, 0) for d in labels],
        "active_users": [active.get(d, 0) for d in labels],
    }
    return render(
        request,
        "admin/dashboard.html",
        {
            "section": "dashboard",
            "days": days,
            "ranges": RANGES,
            "series": series,
            "series_json": json.dumps(series),
            "rows": list(zip(labels, *(series[k] for k in list(series)[1:]), strict=True)),
        },
    )


@router.get("/health")
async def health(request: Request, browser: SignedIn, ctx: Ctx) -> Response:
    """Each dependency's state and latency (``GET /health/ready``)."""
    authorize(browser, "users:read")
    answer = await readiness(ctx)
    body = json.loads(bytes(answer.body))
    return render(request, "admin/health.html", {"section": "health", "health": body})


@router.get("/outbox")
async def outbox(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Email outbox: messages by state, the latest failed ones."""
    authorize(browser, "users:write")
    counts = await OutboxRepository(db).counts_by_status()
    failed = list(
        (
            await db.execute(
                OutboxMessage.__table__.select()
                .where(OutboxMessage.status == OutboxStatus.failed.value)
                .order_by(OutboxMessage.created_at.desc())
                .limit(50)
            )
        ).mappings()
    )
    return render(
        request,
        "admin/outbox.html",
        {"section": "outbox", "counts": counts, "failed": failed, "notice": done},
    )


@router.post("/outbox/retry", dependencies=[CsrfProtected])
async def outbox_retry(request: Request, browser: SignedIn, db: DbSession, ctx: Ctx) -> Response:
    """Put every failed message back in line (``atrium mail retry-failed``)."""
    authorize(browser, "users:write")
    await OutboxRepository(db).retry_failed(ctx.clock.now())
    return redirect(request, "/admin/outbox?done=retried")
