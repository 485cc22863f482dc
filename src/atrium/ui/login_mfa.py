"""The second step of signing in on the pages (``/login/mfa``): a code of the account's
authenticator app, a recovery code or a passkey (through ``static/passkeys.js``), after a
correct password for an account with MFA.

``POST /login`` calls :meth:`AuthService.login` as the API does; when it answers
``mfa_required`` the page keeps the single-use ``mfa_token`` in the short-lived
``HttpOnly`` cookie ``__Host-atrium_mfa`` (never in a URL; its lifetime is the token's,
``mfa.challenge_ttl_seconds``) and redirects here. The form calls
:meth:`MfaLoginService.verify`, the service of ``POST /api/v1/auth/mfa/verify``: the same
per-address rate limit (``login``), the same per-account brute-force throttle (wrong codes
count with wrong passwords), the token bound to the browser's address and user agent, and
a session opened at aal2 (``amr`` ``pwd``, ``otp``, ``mfa``; OWASP MFA Cheat Sheet, NIST SP
800-63B §4.2).

"Remember this device" asks the service for a trusted-device token, kept in the
``HttpOnly`` cookie ``__Host-atrium_device`` for ``mfa.trusted_device_ttl_days``; the next
sign-in in this browser sends it, and a correct password then skips the second factor
only. A password reset or any change of the factors revokes it server-side.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.auth.assurance import second_factors
from atrium.auth.exceptions import MfaRequired
from atrium.auth.service import AuthService
from atrium.context import Ctx
from atrium.core.cookies import MFA_PENDING_COOKIE
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed
from atrium.mfa.exceptions import InvalidMfaToken
from atrium.mfa.login import PASSKEY_AMR, MfaLoginService
from atrium.mfa.schemas import MfaVerifyRequest
from atrium.ui.browser import (
    CsrfProtected,
    MaybeSignedIn,
    client_of,
    cookie_is_secure,
    set_session_cookie,
)
from atrium.ui.errors import on_error
from atrium.ui.rendering import redirect, render, safe_next

router = APIRouter(include_in_schema=False)

MFA_COOKIE = f"__Host-{MFA_PENDING_COOKIE}"
MFA_COOKIE_INSECURE = MFA_PENDING_COOKIE
DEVICE_COOKIE = "__Host-atrium_device"
DEVICE_COOKIE_INSECURE = "atrium_device"
MAX_COOKIE_TOKEN = 128


def _mfa_cookie(request: Request) -> str:
    return MFA_COOKIE if cookie_is_secure(request) else MFA_COOKIE_INSECURE


def _device_cookie(request: Request) -> str:
    return DEVICE_COOKIE if cookie_is_secure(request) else DEVICE_COOKIE_INSECURE


def _cookie(request: Request, name: str) -> str | None:
    raw = request.cookies.get(name)
    return raw if raw and len(raw) <= MAX_COOKIE_TOKEN else None


def mfa_cookie_token(request: Request) -> str | None:
    """The ``mfa_token`` of the sign-in pending in this browser, if any."""
    return _cookie(request, _mfa_cookie(request))


def device_token(request: Request) -> str | None:
    """The trusted-device token this browser keeps, if any (sent with the password)."""
    return _cookie(request, _device_cookie(request))


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/",
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def _forget_mfa_token(request: Request, response: Response) -> None:
    response.delete_cookie(
        _mfa_cookie(request),
        path="/",
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def parse_credential(raw: str) -> dict[str, Any]:
    """The JSON form of a ``PublicKeyCredential`` posted by the pages' script.

    Raises:
        ValidationFailed: 422, not a JSON object.
    """
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed("The passkey's answer is missing; try again.") from exc
    if not isinstance(value, dict):
        raise ValidationFailed("The passkey's answer is missing; try again.")
    return value


def start_second_step(request: Request, exc: MfaRequired, next: str) -> Response:
    """The answer of ``POST /login`` when the account has MFA: keep the ``mfa_token`` in
    its cookie and go to the second step (``next`` travels along; it is no secret)."""
    target = "/login/mfa" + ("?next=" + quote(next, safe="") if next else "")
    response = redirect(request, target)
    token = str(exc.extensions.get("mfa_token", ""))
    age = int(exc.extensions.get("expires_in", 300))
    _set_cookie(request, response, _mfa_cookie(request), token, age)
    return response


async def _context(request: Request, db: DbSession, ctx: Ctx, next: str) -> dict[str, object]:
    """What the second step offers: the code field when the account has an authenticator
    app, the passkey button when it has a passkey (and the first step was not one)."""
    context: dict[str, object] = {
        "next": next,
        "device_days": ctx.settings.mfa.trusted_device_ttl_days,
        "ask_code": True,
        "ask_passkey": False,
    }
    token = _cookie(request, _mfa_cookie(request))
    if token is None:
        return context
    try:
        challenge, user = await MfaLoginService(db, ctx).pending(token, client_of(request))
    except InvalidMfaToken:
        return context
    types = {f.type for f in await second_factors(db, user.id)}
    context["ask_code"] = "totp" in types
    context["ask_passkey"] = "webauthn" in types and not PASSKEY_AMR.intersection(challenge.amr)
    return context


@router.get("/login/mfa")
async def second_step_page(
    request: Request,
    db: DbSession,
    ctx: Ctx,
    next: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """The second-step form; without a pending sign-in, back to /login (public)."""
    if _cookie(request, _mfa_cookie(request)) is None:
        return redirect(request, "/login")
    return render(request, "login_mfa.html", await _context(request, db, ctx, next or ""))


@router.post("/login/mfa", dependencies=[CsrfProtected])
async def second_step(
    request: Request,
    browser: MaybeSignedIn,
    db: DbSession,
    ctx: Ctx,
    code: Annotated[str, Form(max_length=64)] = "",
    recovery_code: Annotated[str, Form(max_length=64)] = "",
    credential: Annotated[str, Form(max_length=16384)] = "",
    remember_device: Annotated[str, Form(max_length=8)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Finish the sign-in with a code, a recovery code or a passkey's assertion
    (``credential``, from the page's script) with ``POST /auth/mfa/verify``'s service and
    rules; the browser's session opens at aal2 (public)."""
    on_error(request, "login_mfa.html", **await _context(request, db, ctx, next))
    ip = request.client.host if request.client else "unknown"
    state = await ctx.ratelimiter.hit("login", ip)
    if state is not None:
        request.state.ratelimit = state
    token = _cookie(request, _mfa_cookie(request))
    if token is None:
        raise InvalidMfaToken("The sign-in has expired; sign in again.")
    proof: dict[str, Any]
    if credential.strip():
        proof = {"webauthn": parse_credential(credential)}
    elif recovery_code.strip():
        proof = {"recovery_code": recovery_code.strip()}
    else:
        proof = {"code": code.strip().replace(" ", "")}
    try:
        body = MfaVerifyRequest(mfa_token=token, remember_device=remember_device == "1", **proof)
    except ValidationError as exc:
        raise ValidationFailed("Give the 6-digit code or a recovery code.") from exc
    tokens = await MfaLoginService(db, ctx).verify(body, client_of(request))
    if browser is not None:  # a second sign-in in one browser ends the first session
        await AuthService(db, ctx).logout(browser.principal, None)
    response = redirect(request, safe_next(next, ctx.settings))
    set_session_cookie(
        request,
        response,
        tokens.refresh_token,
        ctx.settings.auth.refresh_token_absolute_ttl_seconds,
    )
    _forget_mfa_token(request, response)
    if tokens.device_token:
        days = ctx.settings.mfa.trusted_device_ttl_days
        _set_cookie(request, response, _device_cookie(request), tokens.device_token, days * 86400)
    return response
