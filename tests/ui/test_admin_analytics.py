"""The admin console's analytics page: the API's report, drawn from the page's data."""

from __future__ import annotations

import json
import re

import httpx

from atrium.activity.rollups import run_rollup
from atrium.activity.service import flush
from atrium.context import AppContext
from atrium.core.jobs import JobContext
from tests.factories import grant_role, register
from tests.ui.conftest import sign_in


async def test_the_page_shows_the_report_of_the_api(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root = await register(client, "root@example.com")
    await grant_role(ctx, root["id"], "admin")
    await register(client, "ada@example.com")
    await sign_in(browser, "root@example.com")  # a password login, counted
    await flush(ctx.sessionmaker, ctx.activity, ctx.clock)
    await run_rollup(JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {}))
    today = ctx.clock.now().date().isoformat()

    page = await browser.get(f"/admin/analytics?from={today}&to={today}")

    assert page.status_code == 200
    assert 'href="/admin/analytics" aria-current="page"' in page.text
    assert page.text.count("data-analytics-chart=") == 5
    holder = re.search(r'id="analytics-data" data-series="([^"]*)"', page.text)
    assert holder is not None
    series = json.loads(holder.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert series["starts"] == [today]
    assert series["registrations"] == [2]
    assert series["logins"]["password_success"] == [1]
    assert series["dau"] == [1.0]  # root signed in; ada only registered
    assert "Weekly retention" in page.text
    assert re.search(r"<th scope=\"row\">\d{4}-\d\d-\d\d</th><td>2</td><td>50 %</td>", page.text)


async def test_the_page_needs_analytics_read(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "mod@example.com")
    await grant_role(ctx, user["id"], "moderator")
    await sign_in(browser, "mod@example.com")

    assert (await browser.get("/admin/analytics")).status_code == 403
    assert 'href="/admin/analytics"' not in (await browser.get("/admin/users")).text


async def test_a_reversed_range_is_a_page_error_not_a_crash(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root = await register(client, "root@example.com")
    await grant_role(ctx, root["id"], "admin")
    await sign_in(browser, "root@example.com")

    page = await browser.get("/admin/analytics?from=2026-03-10&to=2026-03-01")

    assert page.status_code == 422
