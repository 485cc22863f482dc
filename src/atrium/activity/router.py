"""HTTP routes of activity and analytics: /users/me/activity,
/admin/users/{id}/activity and /admin/analytics."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from atrium.activity import analytics
from atrium.activity.dependencies import AnalyticsRead, UsersRead
from atrium.activity.exceptions import InvalidRange
from atrium.activity.schemas import ActivityDay, ActivityRead, AnalyticsReport
from atrium.activity.service import activity_of, check_range
from atrium.auth.dependencies import CurrentPrincipal
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.exceptions import PermissionDenied
from atrium.users.exceptions import UserNotFound

router = APIRouter(tags=["activity"])

From = Annotated[
    date | None, Query(alias="from", description="First UTC day (default: 29 days before `to`).")
]
To = Annotated[
    date | None, Query(alias="to", description="Last UTC day, inclusive (default: today).")
]


async def _read(
    db: DbSession, ctx: Ctx, user_id: uuid.UUID, since: date | None, until: date | None
) -> ActivityRead:
    first, last = check_range(since, until, ctx.clock.now().date())
    rows, tracking = await activity_of(db, user_id, first, last)
    return ActivityRead(
        user_id=user_id,
        tracking=tracking,
        from_=first,
        to=last,
        items=[ActivityDay.model_validate(r) for r in rows],
    )


@router.get(
    "/users/me/activity",
    response_model=ActivityRead,
    response_model_by_alias=True,
    responses=problem_responses(NotAuthenticated, InvalidToken, InvalidRange, ValidationFailed),
)
async def my_activity(
    principal: CurrentPrincipal,
    db: DbSession,
    ctx: Ctx,
    since: From = None,
    until: To = None,
) -> ActivityRead:
    """Your activity per day: first and last seen, requests, logins, sessions."""
    return await _read(db, ctx, principal.user_id, since, until)


@router.get(
    "/admin/users/{user_id}/activity",
    response_model=ActivityRead,
    response_model_by_alias=True,
    responses=problem_responses(
        NotAuthenticated,
        InvalidToken,
        PermissionDenied,
        UserNotFound,
        InvalidRange,
        ValidationFailed,
    ),
)
async def user_activity(
    user_id: uuid.UUID,
    _: UsersRead,
    db: DbSession,
    ctx: Ctx,
    since: From = None,
    until: To = None,
) -> ActivityRead:
    """An account's activity per day (permission `users:read`)."""
    return await _read(db, ctx, user_id, since, until)


@router.get(
    "/admin/analytics",
    response_model=AnalyticsReport,
    response_model_by_alias=True,
    responses=problem_responses(
        NotAuthenticated, InvalidToken, PermissionDenied, InvalidRange, ValidationFailed
    ),
)
async def read_analytics(
    _: AnalyticsRead,
    db: DbSession,
    ctx: Ctx,
    since: From = None,
    until: To = None,
    interval: Annotated[
        analytics.Interval, Query(description="Bucket size: day, ISO week or calendar month.")
    ] = analytics.Interval.day,
) -> Response:
    """Active accounts, registrations, verification, logins by method, MFA adoption,
    retention cohorts and sessions by device (permission `analytics:read`)."""
    first, last = analytics.check_range(since, until, interval, ctx.clock.now().date())
    report = AnalyticsReport.model_validate(await analytics.report(db, first, last, interval))
    # Serialised once, here: returned as a model, FastAPI would validate it a second time
    # (a year by day is 365 buckets). The documented shape is still response_model's.
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")
