"""The hosted pages of an owner's deletion: a sign-in during the grace period leads to the
cancel page, which keeps the account."""

from __future__ import annotations

import httpx

from atrium.context import AppContext
from tests.factories import PASSWORD, login
from tests.privacy.test_deletion import delete_me, owner
from tests.ui.conftest import csrf_of, post_form


async def test_hosted_login_during_the_grace_period_leads_to_the_cancel_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    o = await owner(client, ctx)
    await delete_me(client, o)
    r = await post_form(browser, "/login", "/login", {"email": o.email, "password": PASSWORD})
    assert r.status_code == 303
    assert r.headers["location"] == "/cancel-deletion"
    page = await browser.get("/cancel-deletion")
    assert page.status_code == 200
    assert 'action="/cancel-deletion"' in page.text
    done = await browser.post("/cancel-deletion", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    assert done.headers["location"] == "/login?done=deletion_cancelled"
    await login(client, o.email)


async def test_the_emailed_link_opens_the_cancel_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from tests.privacy.test_deletion import cancel_link_token

    o = await owner(client, ctx)
    await delete_me(client, o)
    token = await cancel_link_token(ctx, o.email)
    landed = await browser.get(f"/cancel-deletion?token={token}")
    assert landed.status_code == 303
    page = await browser.get("/cancel-deletion")
    done = await browser.post("/cancel-deletion", data={"csrf_token": csrf_of(page.text)})
    assert done.headers["location"] == "/login?done=deletion_cancelled"
    await login(client, o.email)
