"""The admin console's analytics page (``/admin/analytics``): the report of
``GET /api/v1/admin/analytics`` (same permission, same service), drawn with uPlot."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from atrium.activity import analytics
from atrium.activity.schemas import AnalyticsReport
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.ui.admin import authorize
from atrium.ui.browser import SignedIn
from atrium.ui.rendering import render

router = APIRouter(prefix="/admin", include_in_schema=False)

INTERVALS = ("day", "week", "month")


def chart_series(report: dict[str, Any]) -> dict[str, Any]:
    """The columns the page's charts draw (one value per bucket; null where the rollup
    job has not computed a bucket yet)."""
    buckets = report["buckets"]

    def column(key: str) -> list[Any]:
        return [b[key] for b in buckets]

    return {
        "starts": [b["start"].isoformat() for b in buckets],
        "dau": column("dau"),
        "wau": column("wau"),
        "mau": column("mau"),
        "registrations": column("registrations"),
        "verified_share": column("verified_share"),
        "mfa_adoption": column("mfa_adoption"),
        "logins": {
            f"{method}_{outcome}": [b["logins"][method][outcome] for b in buckets]
            for method in ("password", "mfa", "passkey", "social")
            for outcome in ("success", "failure")
        },
        "devices": {
            kind: [b["sessions_by_device"][kind] for b in buckets]
            for kind in ("desktop", "mobile", "tablet", "bot", "other")
        },
    }


@router.get("/analytics")
async def analytics_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
    interval: analytics.Interval = analytics.Interval.day,
) -> Response:
    """Active accounts, registrations, logins by method, adoption, devices, retention."""
    authorize(browser, "analytics:read")
    first, last = analytics.check_range(since, until, interval, ctx.clock.now().date())
    report = await analytics.report(db, first, last, interval)
    AnalyticsReport.model_validate(report)  # the page shows exactly the API's document
    return render(
        request,
        "admin/analytics.html",
        {
            "section": "analytics",
            "report": report,
            "since": first.isoformat(),
            "until": last.isoformat(),
            "interval": interval.value,
            "intervals": INTERVALS,
            "series_json": json.dumps(chart_series(report)),
        },
    )
