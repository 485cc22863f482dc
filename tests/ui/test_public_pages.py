"""Registration and the pages the emailed links open: each link lands on a working page,
the token leaves the URL at once, and a button press (POST) uses it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.models import OutboxMessage, User
from tests.factories import PASSWORD, register
from tests.ui.conftest import post_form, sign_in


async def _link(ctx: AppContext, template: str) -> str:
    async with ctx.sessionmaker() as db:
        rows = (
            await db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.template == template)
                .order_by(OutboxMessage.created_at.desc())
            )
        ).all()
    link: str = rows[0].context["link"]
    return link


async def _follow_link(browser: httpx.AsyncClient, link: str, page: str) -> None:
    parts = urlsplit(link)
    assert parts.path in (page, "/confirm-email")
    landed = await browser.get(f"{parts.path}?{parts.query}")
    assert landed.status_code == 303
    assert landed.headers["location"] == page  # the token is gone from the URL
    assert landed.headers["referrer-policy"] == "no-referrer"


async def test_register_then_verify_from_the_emailed_link(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await post_form(
        browser,
        "/register",
        "/register",
        {"email": "ada@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    await _follow_link(browser, await _link(ctx, "verify_email"), "/verify-email")
    done = await post_form(browser, "/verify-email", "/verify-email", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/login?done=email_verified"
    async with ctx.sessionmaker() as db:
        user = await db.scalar(select(User).where(User.email == "ada@example.com"))
    assert user is not None
    assert user.email_verified_at is not None
    again = await browser.get("/verify-email")
    assert "Open the link from your email again" in again.text


async def test_a_used_or_unknown_link_shows_an_error_not_a_500(
    browser: httpx.AsyncClient,
) -> None:
    await browser.get("/verify-email?token=not-a-real-token")
    response = await post_form(browser, "/verify-email", "/verify-email", {})
    assert response.status_code == 400
    assert "This link is invalid, was already used or has expired." in response.text


async def test_registration_errors_show_the_form_again(browser: httpx.AsyncClient) -> None:
    response = await post_form(
        browser,
        "/register",
        "/register",
        {"email": "ada@example.com", "password": "password", "password_confirm": "password"},
    )
    assert response.status_code == 422
    assert "Choose a stronger password" in response.text
    assert 'aria-invalid="true"' in response.text


async def test_forgot_then_reset_password(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    sent = await post_form(
        browser, "/forgot-password", "/forgot-password", {"email": "ada@example.com"}
    )
    assert sent.status_code == 200
    unknown = await post_form(
        browser, "/forgot-password", "/forgot-password", {"email": "nobody@example.com"}
    )
    assert unknown.text.replace("nobody", "ada") == sent.text
    await _follow_link(browser, await _link(ctx, "reset_password"), "/reset-password")
    new = "a brand new passphrase"
    done = await post_form(
        browser, "/reset-password", "/reset-password", {"password": new, "password_confirm": new}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/login?done=password_reset"
    await sign_in(browser, "ada@example.com", new)


async def test_email_change_from_the_account_page(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    asked = await post_form(
        browser,
        "/account/email",
        "/account/email",
        {"new_email": "ada.lovelace@example.com", "password": PASSWORD},
    )
    assert asked.headers["location"] == "/account/email?done=email_change_sent"
    await _follow_link(browser, await _link(ctx, "confirm_email_change"), "/confirm-email-change")
    done = await post_form(browser, "/confirm-email-change", "/confirm-email-change", {})
    assert done.headers["location"] == "/account?done=email_changed"
    page = await browser.get("/account?done=email_changed")
    assert "ada.lovelace@example.com" in page.text
    assert "Your email address has been changed." in page.text


async def test_accept_language_chooses_spanish(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es"' in page.text
    assert "Iniciar sesión" in page.text


async def test_the_account_language_wins_over_accept_language(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: Any
) -> None:
    await register(client, "ada@example.com")
    await sign_in(browser, "ada@example.com")
    saved = await post_form(
        browser,
        "/account/preferences",
        "/account/preferences",
        {"theme": "dark", "language": "es", "font_scale": "125", "high_contrast": "on"},
    )
    assert saved.status_code == 303
    page = await browser.get("/account/preferences", headers={"Accept-Language": "en"})
    assert '<html lang="es" data-theme="dark" data-font-scale="125" class="high-contrast">' in (
        page.text
    )
