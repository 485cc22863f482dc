"""Browser sessions: the cookie is an Atrium session; CSRF; redirects; rotation."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from atrium.config import Settings
from atrium.ui.rendering import safe_next
from tests.conftest import QueryCounter
from tests.factories import PASSWORD, login, register
from tests.ui.conftest import csrf_of, post_form, sign_in

COOKIE = "__Host-atrium_session"


def _set_cookie(response: httpx.Response, name: str) -> SimpleCookie:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            return jar
    raise AssertionError(f"no Set-Cookie {name}")


async def test_pages_carry_a_strict_csp_and_no_store(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/login")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


async def test_sign_in_sets_a_host_prefixed_httponly_lax_secure_cookie(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    response = await sign_in(browser, "ada@example.com")
    assert response.headers["location"] == "/account"
    morsel = _set_cookie(response, COOKIE)[COOKIE]
    assert morsel["httponly"]
    assert morsel["secure"]
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["domain"]


async def test_browser_session_is_listed_with_the_api_sessions(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    sessions = (await client.get("/api/v1/users/me/sessions", headers=headers)).json()
    assert {s["user_agent"] for s in sessions} == {"pytest", "pytest-browser"}
    page = await browser.get("/account/sessions")
    assert page.status_code == 200
    assert page.text.count("/revoke") == 2


async def test_session_revoked_from_the_api_signs_the_browser_out(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    assert (await browser.get("/account")).status_code == 200
    tokens = await login(client, "ada@example.com")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    sessions = (await client.get("/api/v1/users/me/sessions", headers=headers)).json()
    (browser_session,) = [s for s in sessions if s["user_agent"] == "pytest-browser"]
    revoked = await client.delete(
        f"/api/v1/users/me/sessions/{browser_session['id']}", headers=headers
    )
    assert revoked.status_code == 204
    response = await browser.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


async def test_signing_out_revokes_the_session(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    cookie = browser.cookies[COOKIE]
    response = await post_form(browser, "/logout", "/logout", {})
    assert response.headers["location"] == "/login?done=logged_out"
    assert COOKIE not in browser.cookies
    browser.cookies.set(COOKIE, cookie, domain="atrium.test")
    assert (await browser.get("/account")).status_code == 303


async def test_a_new_sign_in_gives_a_new_cookie_and_ends_the_old_session(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    first = browser.cookies[COOKIE]
    again = await post_form(
        browser, "/account", "/login", {"email": "ada@example.com", "password": PASSWORD}
    )
    assert again.status_code == 303
    second = browser.cookies[COOKIE]
    assert first != second
    browser.cookies.set(COOKIE, first, domain="atrium.test")
    assert (await browser.get("/account")).status_code == 303


async def test_password_change_rotates_the_cookie(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    old = browser.cookies[COOKIE]
    response = await post_form(
        browser,
        "/account/password",
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "new_password_confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 303, response.text
    new = browser.cookies[COOKIE]
    assert new != old
    assert (await browser.get("/account")).status_code == 200
    browser.cookies.set(COOKIE, old, domain="atrium.test")
    assert (await browser.get("/account")).status_code == 303


@pytest.mark.parametrize(
    "action", ["/login", "/register", "/forgot-password", "/logout", "/reset-password"]
)
async def test_a_form_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient, action: str
) -> None:
    await browser.get("/login")  # the browser holds a CSRF cookie
    response = await browser.post(action, data={"email": "ada@example.com", "password": "x"})
    assert response.status_code == 403
    assert "The form has expired" in response.text
    assert response.headers["content-type"].startswith("text/html")


async def test_a_csrf_token_of_another_browser_is_refused(
    app: Any, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    foreign = csrf_of((await client.get("/login")).text)
    await browser.get("/login")
    response = await browser.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": foreign},
    )
    assert response.status_code == 403
    assert COOKIE not in browser.cookies


async def test_a_post_from_another_origin_is_refused(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    token = csrf_of((await browser.get("/login")).text)
    response = await browser.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/account/sessions")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount%2Fsessions"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/users?q=a", "/admin/users?q=a"),
        (None, "/account"),
        ("", "/account"),
        ("https://evil.example/", "/account"),
        ("//evil.example/", "/account"),
        ("/\\evil.example", "/account"),
        ("javascript:alert(1)", "/account"),
        ("https://app.example/after", "https://app.example/after"),
        ("https://app.example.evil/after", "/account"),
        ("/ok\r\nSet-Cookie: x=1", "/account"),
    ],
)
def test_redirect_targets_come_from_the_allow_list(target: str | None, expected: str) -> None:
    settings = Settings(_env_file=None, ui={"allowed_redirect_origins": ["https://app.example"]})  # type: ignore[call-arg]
    assert safe_next(target, settings) == expected


async def test_sign_in_never_redirects_to_another_site(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    response = await post_form(
        browser,
        "/login",
        "/login",
        {"email": "ada@example.com", "password": PASSWORD, "next": "https://evil.example/x"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


async def test_wrong_password_shows_the_form_again_and_is_audited(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: Any
) -> None:
    await register(client, "ada@example.com")
    response = await post_form(
        browser, "/login", "/login", {"email": "ada@example.com", "password": "wrong one"}
    )
    assert response.status_code == 401
    assert "The email or password is incorrect." in response.text
    assert 'value="ada@example.com"' in response.text
    from sqlalchemy import func, select

    from atrium.models import AuditEvent

    async with ctx.sessionmaker() as db:
        failed = await db.scalar(
            select(func.count()).where(AuditEvent.action == "auth.login_failed")
        )
    assert failed == 1


async def test_a_signed_in_page_reads_no_session_from_the_database_once_cached(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, queries: QueryCounter
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    assert (await browser.get("/account/preferences")).status_code == 200  # cached
    queries.statements.clear()

    assert (await browser.get("/account/preferences")).status_code == 200

    # The principal cache answers for the cookie as it does for an access token: the
    # session, its token, the account, its roles and preferences cost no statement.
    read = " ".join(queries.statements).lower()
    for table in ("refresh_token", "auth_session", "user_account", "user_preferences"):
        assert f"from {table}" not in read, queries.statements


async def test_a_cached_cookie_is_refused_once_its_token_is_refreshed_through_the_api(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    assert (await browser.get("/account")).status_code == 200  # cached
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": browser.cookies[COOKIE]}
    )
    assert refreshed.status_code == 200

    response = await browser.get("/account")

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount"


async def test_a_changed_preference_shows_on_the_next_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    assert 'data-theme="dark"' not in (await browser.get("/account")).text  # cached
    tokens = await login(client, "ada@example.com")
    patched = await client.patch(
        "/api/v1/users/me/preferences",
        json={"theme": "dark"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert patched.status_code == 200

    assert 'data-theme="dark"' in (await browser.get("/account")).text
