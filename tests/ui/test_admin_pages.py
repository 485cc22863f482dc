"""The admin console: permissions, the users list on the admin service, actions."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.conftest import QueryCounter
from tests.factories import grant_role, insert_user, register
from tests.mfa.helpers import events, mails, mfa_account, password_step, totp_code
from tests.ui.conftest import csrf_of, post_form, sign_in
from tests.ui.test_account_mfa import enrol, signed_in


async def _admin(browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext) -> None:
    user = await register(client, "root@example.com")
    await grant_role(ctx, user["id"], "admin")
    await sign_in(browser, "root@example.com")


async def test_the_console_needs_the_permission(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    response = await browser.get("/admin/users")
    assert response.status_code == 403
    assert "You do not have permission to do this." in response.text
    assert 'href="/admin"' not in (await browser.get("/account")).text


async def test_users_search_and_pages(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _admin(browser, client, ctx)
    for n in range(3):
        await insert_user(ctx, email=f"grace{n}@example.com", full_name="Grace Hopper")
    page = await browser.get("/admin/users?q=grace&sort=email&limit=2")
    assert page.status_code == 200
    assert "grace0@example.com" in page.text
    assert "grace1@example.com" in page.text
    assert "grace2@example.com" not in page.text
    assert 'rel="next"' in page.text
    partial = await browser.get("/admin/users?q=grace", headers={"HX-Request": "true"})
    assert "<html" not in partial.text
    assert "grace2@example.com" in partial.text


async def test_users_page_costs_the_queries_of_the_api(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, queries: QueryCounter
) -> None:
    await _admin(browser, client, ctx)
    for _ in range(5):
        await insert_user(ctx)
    await browser.get("/admin/users")
    queries.statements.clear()
    await browser.get("/admin/users?limit=5")
    # The cookie's session and the preferences come from the cache, as an API access
    # token's principal does: the header's unread-notice count (with whether a broadcast
    # is in progress), the page of accounts, their
    # roles (the API call's two statements).
    assert queries.count == 3, queries.statements
    assert sum("count(" in q.lower() and "notification" in q for q in queries.statements) == 1


async def test_suspend_grant_and_audit(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _admin(browser, client, ctx)
    target = await register(client, "ada@example.com")
    detail = f"/admin/users/{target['id']}"
    suspended = await post_form(browser, detail, f"{detail}/status", {"status": "suspended"})
    assert suspended.status_code == 303
    assert 'id="user-status">suspended' in (await browser.get(detail)).text
    granted = await post_form(browser, detail, f"{detail}/roles", {"role": "moderator"})
    assert granted.status_code == 303
    page = await browser.get(detail)
    assert "moderator" in page.text
    assert "admin.user_suspended" in page.text
    assert "role.granted" in page.text
    refused = await post_form(browser, detail, f"{detail}/roles", {"role": "superadmin"})
    assert refused.status_code == 403
    audit = await browser.get("/admin/audit?action=admin.user_suspended")
    assert audit.status_code == 200
    assert "admin.user_suspended" in audit.text


async def test_role_cycle_is_refused_on_the_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "root@example.com")
    await grant_role(ctx, user["id"], "superadmin")
    await sign_in(browser, "root@example.com")
    response = await post_form(
        browser, "/admin/roles/user", "/admin/roles/user", {"parents": "admin"}
    )
    assert response.status_code == 422
    assert "A role cannot inherit from itself" in response.text


async def test_dashboard_outbox_and_health(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _admin(browser, client, ctx)
    dashboard = await browser.get("/admin?days=7")
    assert dashboard.status_code == 200
    assert 'data-chart="registrations"' in dashboard.text
    assert dashboard.text.count('<tr><th scope="row">') == 7
    assert (await browser.get("/admin/outbox")).status_code == 200
    health = await browser.get("/admin/health")
    assert health.status_code == 200
    assert "database" in health.text


async def test_bulk_suspend_of_a_selection(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _admin(browser, client, ctx)
    ids = [str(await insert_user(ctx, email=f"bulk{n}@example.com")) for n in range(2)]
    token = csrf_of((await browser.get("/admin/users")).text)
    response = await browser.post(
        "/admin/users/bulk",
        data={"csrf_token": token, "action": "suspend", "role": "", "ids": ids},
    )
    assert response.status_code == 303
    page = await browser.get("/admin/users?status=suspended")
    assert "bulk0@example.com" in page.text
    assert "bulk1@example.com" in page.text


async def test_soft_delete_then_restore(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await _admin(browser, client, ctx)
    target = await register(client, "ada@example.com")
    detail = f"/admin/users/{target['id']}"
    deleted = await post_form(browser, detail, f"{detail}/delete", {})
    assert deleted.headers["location"] == f"{detail}?done=deleted"
    assert 'id="user-status">deleted' in (await browser.get(detail)).text
    restored = await post_form(browser, detail, f"{detail}/restore", {})
    assert restored.headers["location"] == f"{detail}?done=restored"
    assert 'id="user-status">active' in (await browser.get(detail)).text


# --- MFA reset ----------------------------------------------------------------------------


async def test_mfa_reset_removes_the_factors_and_is_audited(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    target = await mfa_account(client, ctx, clock, "lost@example.com")
    admin_id = await signed_in(browser, ctx, "root@example.com")
    await grant_role(ctx, admin_id, "admin")
    await enrol(browser, clock)  # the browser's session is now at aal2
    detail = f"/admin/users/{target.id}"
    assert 'id="user-mfa">On: 1 method' in (await browser.get(detail)).text

    confirm = await browser.get(f"{detail}/mfa/reset")
    assert confirm.status_code == 200
    assert "lost@example.com" in confirm.text
    reset = await browser.post(f"{detail}/mfa/reset", data={"csrf_token": csrf_of(confirm.text)})

    assert reset.status_code == 303, reset.text
    assert reset.headers["location"] == f"{detail}?done=mfa_reset"
    page = (await browser.get(detail)).text
    assert 'id="user-mfa">Off' in page
    assert "admin.mfa_reset" in page
    (event,) = await events(ctx, "admin.mfa_reset")
    assert str(event.actor_id) == admin_id
    assert len(await mails(ctx, "mfa_reset")) == 1
    # The owner signs in with the password alone again.
    assert (await password_step(client, target.email)).status_code == 200


async def test_mfa_reset_without_the_token_changes_nothing(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    target = await mfa_account(client, ctx, clock, "lost@example.com")
    admin_id = await signed_in(browser, ctx, "root@example.com")
    await grant_role(ctx, admin_id, "admin")
    await enrol(browser, clock)

    refused = await browser.post(f"/admin/users/{target.id}/mfa/reset", data={})

    assert refused.status_code == 403
    assert await events(ctx, "admin.mfa_reset") == []


async def test_mfa_reset_asks_for_a_recent_sign_in_first(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    target = await mfa_account(client, ctx, clock, "lost@example.com")
    admin_id = await signed_in(browser, ctx, "root@example.com")
    await grant_role(ctx, admin_id, "admin")
    secret, _codes, _page = await enrol(browser, clock)
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 60)
    back = f"/admin/users/{target.id}/mfa/reset"

    asked = await browser.get(back)
    assert asked.status_code == 303
    assert asked.headers["location"] == "/account/reauth?next=" + quote(back, safe="")
    reauth = await post_form(
        browser,
        asked.headers["location"],
        "/account/reauth",
        {"code": totp_code(secret, clock), "next": back},
    )

    assert reauth.status_code == 303, reauth.text
    assert reauth.headers["location"] == back + "?done=reauthenticated"
    assert (await browser.get(back)).status_code == 200


async def test_mfa_reset_needs_a_second_factor_on_the_admins_own_account(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    target = await mfa_account(client, ctx, clock, "lost@example.com")
    admin_id = await signed_in(browser, ctx, "root@example.com")
    await grant_role(ctx, admin_id, "admin")
    back = f"/admin/users/{target.id}/mfa/reset"

    page = await browser.get(back)
    assert page.status_code == 200
    assert "set it up on your own account first" in page.text
    assert f'action="{back}"' not in page.text
    refused = await browser.post(back, data={"csrf_token": csrf_of(page.text)})

    assert refused.status_code == 401
    assert "set it up on your own account first" in refused.text
    assert await events(ctx, "admin.mfa_reset") == []


async def test_mfa_reset_needs_its_permission(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    target = await mfa_account(client, ctx, clock, "lost@example.com")
    moderator_id = await signed_in(browser, ctx, "mod@example.com")
    await grant_role(ctx, moderator_id, "moderator")
    await enrol(browser, clock)

    page = await browser.get(f"/admin/users/{target.id}/mfa/reset")

    assert page.status_code == 403
