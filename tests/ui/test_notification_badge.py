"""The pages' header shows the signed-in account's unread notices."""

from __future__ import annotations

import uuid

import httpx

from atrium.context import AppContext
from atrium.core.db import unit_of_work
from atrium.notifications.service import add_notification
from tests.factories import register
from tests.ui.conftest import sign_in


async def notify(ctx: AppContext, user_id: str, category: str = "account") -> None:
    async with unit_of_work(ctx.sessionmaker) as db:
        await add_notification(
            db,
            user_id=uuid.UUID(user_id),
            category=category,
            title="t",
            body="b",
            link=None,
            source_id=None,
            now=ctx.clock.now(),
        )


async def test_header_counts_unread_notices(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    assert "unread notification" not in (await browser.get("/account")).text

    await notify(ctx, user["id"])
    assert (
        '<span class="badge" role="status">1 unread notification</span>'
        in (await browser.get("/account")).text
    )
    await notify(ctx, user["id"], "security")
    assert "2 unread notifications" in (await browser.get("/account")).text
