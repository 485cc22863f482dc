"""Browser test in Debian's Chromium: the header's unread count follows new notices live
(server-sent events of the page's session, ``ui/live.py``, written by ``static/app.js``)
— a role granted to the signed-in account, then an admin broadcast, each change the badge
without a reload. A CSP violation fails the test.

The bootstrap's own ``role.granted`` (superadmin) becomes a notice whenever the server's
in-process worker gets to it — on a loaded machine after the page has opened its stream,
with the same title as the grant under test — so the test waits for that notice before it
reads the count it starts from."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.e2e import test_browser as base
from tests.e2e.browser import ADMIN_EMAIL, ADMIN_PASSWORD, AtriumServer, wait_for

# The fixtures of the browser tests (a server and a Chromium for this module).
server = base.server
chromium = base.chromium
page = base.page

pytestmark = pytest.mark.e2e


def _api(server: AtriumServer) -> httpx.Client:
    login = httpx.post(
        f"{server.base}/api/v1/auth/login",
        data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    return httpx.Client(
        base_url=f"{server.base}/api/v1",
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )


def _bootstrap_notice(api: httpx.Client) -> bool | None:
    inbox = api.get("/users/me/notifications", params={"limit": 100})
    assert inbox.status_code == 200, inbox.text
    return any("superadmin" in n["body"] for n in inbox.json()["items"]) or None


def _label(count: int) -> re.Pattern[str]:
    return re.compile(rf"^{count} unread notifications?$")


def test_the_unread_badge_changes_when_a_notice_arrives(page: Any, server: AtriumServer) -> None:
    with _api(server) as api:
        wait_for("the bootstrap's role.granted as a notice", lambda: _bootstrap_notice(api), 60)
        base._sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        holder = page.locator("[data-unread-stream]")
        text = holder.locator(".badge").text_content() or ""
        unread = int(text.split()[0]) if text.strip() else 0  # signing in may have left notices
        assert holder.is_hidden() == (unread == 0)
        with page.expect_response(
            lambda r: r.url.endswith("/account/notifications/stream")
        ) as opened:
            page.reload()
        assert opened.value.headers["content-type"].startswith("text/event-stream")
        me = api.get("/users/me").json()
        granted = api.put(f"/admin/users/{me['id']}/roles/moderator")
        assert granted.status_code == 200, granted.text

        badge = page.get_by_role("status").filter(has_text=_label(unread + 1))
        badge.wait_for(timeout=15_000)  # the in-process worker turns the event into a notice
        assert badge.get_attribute("title") == "You were given a role"
        assert holder.is_visible()

        sent = api.post(
            "/admin/notifications/broadcast",
            json={
                "audience": "all",
                "category": "account",
                "title": "Maintenance on Sunday",
                "body": "The service pauses at 02:00 UTC.",
            },
        )
        assert sent.status_code in (201, 202), sent.text
        page.get_by_role("status").filter(has_text=_label(unread + 2)).wait_for(timeout=15_000)
    assert holder.locator(".badge").get_attribute("title") == "Maintenance on Sunday"
