"""Public pages: sign in and out, registration, and the pages the emailed links open.

Emailed links carry a token in the query string. Its first use stores it in a short-lived
``HttpOnly`` cookie and redirects to the same page without it, so the token leaves the
address bar, the history and any ``Referer`` at once; the page then asks for a button
press (a POST with the CSRF token) before it uses the token, so that mail scanners that
open links cannot consume them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from atrium.account.deletion import DeletionService
from atrium.auth.exceptions import MfaRequired
from atrium.auth.service import AuthService
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import AppError
from atrium.ui.browser import (
    CsrfProtected,
    MaybeSignedIn,
    clear_session_cookie,
    client_of,
    cookie_is_secure,
    set_session_cookie,
)
from atrium.ui.errors import on_error
from atrium.ui.login_mfa import device_token, start_second_step
from atrium.ui.rendering import language_of, redirect, render, safe_next
from atrium.ui.social import login_buttons
from atrium.verification.deletion import DeletionPending
from atrium.verification.service import AccountEmailService

router = APIRouter(include_in_schema=False)

LINK_COOKIE = "__Host-atrium_link"
LINK_COOKIE_INSECURE = "atrium_link"
LINK_TTL_SECONDS = 900
MAX_TOKEN_LENGTH = 256
# Fixed notices a redirect may ask a page to show (never free text from the URL).
NOTICES = {
    "logged_out",
    "password_reset",
    "email_verified",
    "email_changed",
    "session_ended",
    "account_deleted",
    "deletion_cancelled",
}

Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=1024)]


class PasswordsDiffer(AppError):
    status = 422
    code = "passwords_differ"
    title = "The passwords differ"


def _link_cookie(request: Request) -> str:
    return LINK_COOKIE if cookie_is_secure(request) else LINK_COOKIE_INSECURE


def _stash_token(request: Request, purpose: str, token: str, page: str) -> Response:
    response = redirect(request, page)
    if token and len(token) <= MAX_TOKEN_LENGTH:
        response.set_cookie(
            _link_cookie(request),
            f"{purpose}:{token}",
            max_age=LINK_TTL_SECONDS,
            path="/",
            secure=cookie_is_secure(request),
            httponly=True,
            samesite="lax",
        )
    return response


def _stashed_token(request: Request, purpose: str) -> str | None:
    value = request.cookies.get(_link_cookie(request), "")
    stored_purpose, _sep, token = value.partition(":")
    if stored_purpose != purpose or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def _forget_token(request: Request, response: Response) -> None:
    response.delete_cookie(
        _link_cookie(request),
        path="/",
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def _notice(done: str | None) -> str | None:
    return done if done in NOTICES else None


# --- sign in and out ------------------------------------------------------------------------


@router.get("/login")
async def login_page(
    request: Request,
    browser: MaybeSignedIn,
    db: DbSession,
    ctx: Ctx,
    next: Annotated[str | None, Query(max_length=2048)] = None,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The sign-in form; a signed-in browser goes straight to ``next`` (public)."""
    target = safe_next(next, ctx.settings)
    if browser is not None and done is None:
        return redirect(request, target)
    buttons = await login_buttons(request, db, target)
    return render(
        request,
        "login.html",
        {"next": next or "", "email": "", "notice": _notice(done), "providers": buttons},
    )


@router.post("/login", dependencies=[CsrfProtected])
async def login(
    request: Request,
    browser: MaybeSignedIn,
    db: DbSession,
    ctx: Ctx,
    email: Email = "",
    password: Password = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Check the password with the API's rules (rate limit, brute-force throttle, audit)
    and open a session; the cookie is new at every sign-in. An account with MFA goes on
    to the second step (``/login/mfa``) unless this browser is a trusted device (public)."""
    buttons = await login_buttons(request, db, safe_next(next, ctx.settings))
    on_error(request, "login.html", next=next, email=email, notice=None, providers=buttons)
    ip = request.client.host if request.client else "unknown"
    state = await ctx.ratelimiter.hit("login", ip)
    if state is not None:
        request.state.ratelimit = state
    try:
        tokens = await AuthService(db, ctx).login(
            email, password, client_of(request), device_token=device_token(request)
        )
    except MfaRequired as exc:  # the challenge is committed with the page's unit of work
        return start_second_step(request, exc, next)
    except DeletionPending as exc:  # the cancel token is committed with the page's work
        return _stash_token(request, "cancel_deletion", exc.cancel_token, "/cancel-deletion")
    response = redirect(request, safe_next(next, ctx.settings))
    if browser is not None:  # a second sign-in in one browser ends the first session
        await AuthService(db, ctx).logout(browser.principal, None)
    set_session_cookie(
        request,
        response,
        tokens.refresh_token,
        ctx.settings.auth.refresh_token_absolute_ttl_seconds,
    )
    return response


@router.get("/logout")
async def logout_page(request: Request, browser: MaybeSignedIn) -> Response:
    """Asks to confirm signing out (a GET never changes state) (public)."""
    if browser is None:
        return redirect(request, "/login")
    return render(request, "logout.html")


@router.post("/logout", dependencies=[CsrfProtected])
async def logout(request: Request, browser: MaybeSignedIn, db: DbSession, ctx: Ctx) -> Response:
    """End the browser's session (revoked like an API logout) (public)."""
    if browser is not None:
        await AuthService(db, ctx).logout(browser.principal, None)
    response = redirect(request, "/login?done=logged_out")
    clear_session_cookie(request, response)
    return response


# --- registration ---------------------------------------------------------------------------


@router.get("/register")
async def register_page(request: Request, browser: MaybeSignedIn, ctx: Ctx) -> Response:
    """The registration form (public)."""
    if browser is not None:
        return redirect(request, ctx.settings.ui.default_redirect)
    return render(request, "register.html", {"email": ""})


@router.post("/register", dependencies=[CsrfProtected])
async def register(
    request: Request,
    db: DbSession,
    ctx: Ctx,
    email: Email = "",
    password: Password = "",
    password_confirm: Password = "",
) -> Response:
    """Create an account as ``POST /auth/register`` does; a verification email is queued
    (public)."""
    on_error(request, "register.html", email=email)
    ip = request.client.host if request.client else "unknown"
    await ctx.ratelimiter.hit("register", ip)
    if password != password_confirm:
        raise PasswordsDiffer()
    locale = language_of(request, None)
    await AuthService(db, ctx).sign_up(email, password, locale=locale)
    return render(request, "registered.html", {"email": email})


# --- password reset -------------------------------------------------------------------------


@router.get("/forgot-password")
async def forgot_page(request: Request) -> Response:
    """Ask for a password-reset link (public)."""
    return render(request, "forgot_password.html", {"email": ""})


@router.post("/forgot-password", dependencies=[CsrfProtected])
async def forgot(request: Request, db: DbSession, ctx: Ctx, email: Email = "") -> Response:
    """Queue a reset link if the account exists; the same answer either way (public)."""
    on_error(request, "forgot_password.html", email=email)
    ip = request.client.host if request.client else "unknown"
    await ctx.ratelimiter.hit("forgot_password", ip)
    await AccountEmailService(db, ctx).forgot_password(email)
    return render(request, "forgot_sent.html", {"email": email})


@router.get("/reset-password")
async def reset_page(
    request: Request,
    token: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The emailed reset link lands here; the form to choose a new password (public)."""
    if token is not None:
        return _stash_token(request, "reset", token, "/reset-password")
    has_token = _stashed_token(request, "reset") is not None
    return render(request, "reset_password.html", {"has_token": has_token})


@router.post("/reset-password", dependencies=[CsrfProtected])
async def reset(
    request: Request,
    db: DbSession,
    ctx: Ctx,
    password: Password = "",
    password_confirm: Password = "",
) -> Response:
    """Set the new password; every session of the account ends (public)."""
    token = _stashed_token(request, "reset")
    on_error(request, "reset_password.html", has_token=token is not None)
    if password != password_confirm:
        raise PasswordsDiffer()
    await AccountEmailService(db, ctx).reset_password(token or "", password)
    response = redirect(request, "/login?done=password_reset")
    _forget_token(request, response)
    clear_session_cookie(request, response)
    return response


# --- cancelling an owner's deletion ----------------------------------------------------------


@router.get("/cancel-deletion")
async def cancel_deletion_page(
    request: Request,
    token: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The emailed cancel link, or a sign-in during the grace period, lands here (public)."""
    if token is not None:
        return _stash_token(request, "cancel_deletion", token, "/cancel-deletion")
    has_token = _stashed_token(request, "cancel_deletion") is not None
    return render(request, "cancel_deletion.html", {"has_token": has_token})


@router.post("/cancel-deletion", dependencies=[CsrfProtected])
async def cancel_deletion(request: Request, db: DbSession, ctx: Ctx) -> Response:
    """Keep the account (``POST /api/v1/auth/deletion/cancel``) (public)."""
    token = _stashed_token(request, "cancel_deletion")
    on_error(request, "cancel_deletion.html", has_token=token is not None)
    await DeletionService(db, ctx).cancel(token or "")
    response = redirect(request, "/login?done=deletion_cancelled")
    _forget_token(request, response)
    return response


# --- email verification and change ----------------------------------------------------------


@router.get("/verify-email")
async def verify_page(
    request: Request,
    token: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The emailed verification link lands here (public)."""
    if token is not None:
        return _stash_token(request, "verify", token, "/verify-email")
    has_token = _stashed_token(request, "verify") is not None
    return render(request, "verify_email.html", {"has_token": has_token})


@router.post("/verify-email", dependencies=[CsrfProtected])
async def verify(request: Request, db: DbSession, ctx: Ctx, browser: MaybeSignedIn) -> Response:
    """Mark the address verified with the stashed token (public)."""
    token = _stashed_token(request, "verify")
    on_error(request, "verify_email.html", has_token=token is not None)
    await AccountEmailService(db, ctx).verify_email(token or "")
    target = "/account?done=email_verified" if browser else "/login?done=email_verified"
    response = redirect(request, target)
    _forget_token(request, response)
    return response


@router.get("/confirm-email-change")
@router.get("/confirm-email")
async def confirm_change_page(
    request: Request,
    token: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The emailed link to confirm a new address lands here (public)."""
    if token is not None:
        return _stash_token(request, "change", token, "/confirm-email-change")
    has_token = _stashed_token(request, "change") is not None
    return render(request, "confirm_email_change.html", {"has_token": has_token})


@router.post("/confirm-email-change", dependencies=[CsrfProtected])
async def confirm_change(
    request: Request, db: DbSession, ctx: Ctx, browser: MaybeSignedIn
) -> Response:
    """Apply the email change with the stashed token (public)."""
    token = _stashed_token(request, "change")
    on_error(request, "confirm_email_change.html", has_token=token is not None)
    await AccountEmailService(db, ctx).confirm_email_change(token or "")
    target = "/account?done=email_changed" if browser else "/login?done=email_changed"
    response = redirect(request, target)
    _forget_token(request, response)
    return response
