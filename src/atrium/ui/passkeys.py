"""Passkeys on the pages (W3C WebAuthn Level 3): the account's passkeys (``/account/passkeys``:
add, rename, remove), signing in with a passkey without a password (``/login``), a passkey
as the second step of a sign-in (``/login/mfa``) and to confirm it is you
(``/account/reauth``).

The ceremonies need JavaScript (``navigator.credentials``, through the vendored
``@simplewebauthn/browser`` and ``static/passkeys.js``; everything else works without).
The script asks one of the JSON ``…/options`` routes below for the options (a CSRF-checked
POST), lets the browser create or use the credential, puts its JSON form in the hidden
``credential`` field of an ordinary form and submits it: the answer is a page or a
redirect like every other form, with the errors, rate limits, throttle and audit of the
API routes whose services it calls (:class:`PasskeyService`, :class:`PasskeyLogin`,
:class:`SecondFactorOptions`, :class:`MfaLoginService`, :class:`StepUpService`).

Adding and removing a passkey changes the account's factors: the API's step-up rule
applies (:func:`require_step_up`), and the browser is sent to ``/account/reauth`` when it
is not met. Renaming does not weaken anything and needs no step-up.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response

from atrium.auth.exceptions import MfaRequired
from atrium.auth.service import AuthService
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed
from atrium.mfa.exceptions import InvalidMfaToken
from atrium.passkeys.exceptions import PasskeyNotFound
from atrium.passkeys.login import PasskeyLogin
from atrium.passkeys.second_factor import SecondFactorOptions
from atrium.passkeys.service import PasskeyService
from atrium.ui.account_mfa import step_up_needed
from atrium.ui.browser import (
    CsrfProtected,
    MaybeSignedIn,
    SignedIn,
    client_of,
    set_session_cookie,
)
from atrium.ui.errors import on_error
from atrium.ui.login_mfa import mfa_cookie_token, parse_credential, start_second_step
from atrium.ui.rendering import redirect, render, safe_next
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(include_in_schema=False)
NOTICES = {"passkey_added", "passkey_renamed", "passkey_removed", "reauthenticated"}
Credential = Annotated[str, Form(max_length=16384)]
BACK = "/account/passkeys"


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def _context(browser: Any, db: DbSession, ctx: Ctx) -> dict[str, object]:
    return {
        "section": "passkeys",
        "passkeys": await PasskeyService(db, ctx).list_of(browser.user_id),
        "email_verified": browser.principal.user.email_verified,
    }


# --- the account's passkeys -----------------------------------------------------------------


@router.get("/account/passkeys")
async def passkeys_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The account's passkeys (``GET /users/me/passkeys``) and the form to add one."""
    notice = done if done in NOTICES else None
    context = await _context(browser, db, ctx)
    return render(request, "account/passkeys.html", {**context, "notice": notice})


@router.post("/account/passkeys/options", dependencies=[CsrfProtected])
async def registration_options(
    request: Request, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Creation options for a new passkey (``POST /users/me/passkeys/registration/options``),
    as JSON for the script; ``{"redirect": ...}`` when a step-up is needed first."""
    if (answer := await step_up_needed(request, browser, ctx, BACK)) is not None:
        return _json({"redirect": answer.headers["location"]})
    if not browser.principal.user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    return _json(
        {"public_key": await PasskeyService(db, ctx).registration_options(browser.user_id)}
    )


@router.post("/account/passkeys", dependencies=[CsrfProtected])
async def add_passkey(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    credential: Credential = "",
    name: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Register the passkey the browser created (``POST /users/me/passkeys/registration``):
    audited and emailed; the first one turns two-step verification on."""
    if (answer := await step_up_needed(request, browser, ctx, BACK)) is not None:
        return answer
    on_error(request, "account/passkeys.html", **await _context(browser, db, ctx), notice=None)
    if not browser.principal.user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    label = name.strip() or "Passkey"
    if len(label) > 100:
        raise ValidationFailed("Give the passkey a name of at most 100 characters.")
    await PasskeyService(db, ctx).register(browser.principal, parse_credential(credential), label)
    return redirect(request, BACK + "?done=passkey_added")


def _passkey_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise PasskeyNotFound("No such passkey.") from exc


@router.post("/account/passkeys/{passkey_id}/rename", dependencies=[CsrfProtected])
async def rename_passkey(
    request: Request,
    passkey_id: str,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    name: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Rename a passkey (``PATCH /users/me/passkeys/{id}``)."""
    on_error(request, "account/passkeys.html", **await _context(browser, db, ctx), notice=None)
    label = name.strip()
    if not label or len(label) > 100:
        raise ValidationFailed("Give the passkey a name of 1 to 100 characters.")
    await PasskeyService(db, ctx).rename(browser.user_id, _passkey_id(passkey_id), label)
    return redirect(request, BACK + "?done=passkey_renamed")


@router.post("/account/passkeys/{passkey_id}/remove", dependencies=[CsrfProtected])
async def remove_passkey(
    request: Request, passkey_id: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Remove a passkey (``DELETE /users/me/passkeys/{id}``): it can no longer sign in; the
    last factor turns two-step verification off."""
    if (answer := await step_up_needed(request, browser, ctx, BACK)) is not None:
        return answer
    on_error(request, "account/passkeys.html", **await _context(browser, db, ctx), notice=None)
    await PasskeyService(db, ctx).remove(browser.user_id, _passkey_id(passkey_id))
    return redirect(request, BACK + "?done=passkey_removed")


# --- confirm it is you with a passkey (step-up) -----------------------------------------------


@router.post("/account/reauth/passkey/options", dependencies=[CsrfProtected])
async def reauth_options(browser: SignedIn, db: DbSession, ctx: Ctx) -> Response:
    """Request options for a step-up with one of the account's passkeys
    (``POST /auth/step-up/webauthn/options``), as JSON for the script."""
    options = await SecondFactorOptions(db, ctx).for_user(browser.user_id)
    return _json({"public_key": options.public_key})


# --- sign in with a passkey -----------------------------------------------------------------


async def _hit_login_limit(request: Request, ctx: Ctx) -> None:
    ip = request.client.host if request.client else "unknown"
    state = await ctx.ratelimiter.hit("login", ip)
    if state is not None:
        request.state.ratelimit = state


@router.post("/login/passkey/options", dependencies=[CsrfProtected])
async def login_options(request: Request, db: DbSession, ctx: Ctx) -> Response:
    """Request options for a discoverable passkey (``POST /auth/passkey/options``), as JSON
    for the script (public)."""
    await _hit_login_limit(request, ctx)
    options = await PasskeyLogin(db, ctx).options(None)
    return _json({"challenge_id": str(options.challenge_id), "public_key": options.public_key})


@router.post("/login/passkey", dependencies=[CsrfProtected])
async def login_with_passkey(
    request: Request,
    browser: MaybeSignedIn,
    db: DbSession,
    ctx: Ctx,
    challenge_id: Annotated[str, Form(max_length=64)] = "",
    credential: Credential = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Sign in with the passkey's assertion (``POST /auth/passkey/login``'s service); a
    passkey without user verification on an account with an authenticator app goes on to
    the second step (public)."""
    on_error(request, "login.html", next=next, email="", notice=None, providers=[])
    await _hit_login_limit(request, ctx)
    try:
        challenge = uuid.UUID(challenge_id)
    except ValueError as exc:
        raise ValidationFailed("The passkey's answer is missing; try again.") from exc
    try:
        tokens = await PasskeyLogin(db, ctx).login(
            challenge, parse_credential(credential), client_of(request)
        )
    except MfaRequired as exc:
        return start_second_step(request, exc, next)
    if browser is not None:  # a second sign-in in one browser ends the first session
        await AuthService(db, ctx).logout(browser.principal, None)
    response = redirect(request, safe_next(next, ctx.settings))
    set_session_cookie(
        request,
        response,
        tokens.refresh_token,
        ctx.settings.auth.refresh_token_absolute_ttl_seconds,
    )
    return response


@router.post("/login/mfa/passkey/options", dependencies=[CsrfProtected])
async def second_step_options(request: Request, db: DbSession, ctx: Ctx) -> Response:
    """Request options for a passkey as the second step of the pending sign-in
    (``POST /auth/mfa/webauthn/options``), as JSON for the script (public)."""
    await _hit_login_limit(request, ctx)
    token = mfa_cookie_token(request)
    if token is None:
        raise InvalidMfaToken("The sign-in has expired; sign in again.")
    options = await SecondFactorOptions(db, ctx).for_login(token, client_of(request))
    return _json({"public_key": options.public_key})
