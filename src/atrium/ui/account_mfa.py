"""The account's two-step verification pages (``/account/mfa``): enrol an authenticator
app (TOTP, RFC 6238: QR code and secret, confirmed with a code), the ten recovery codes
shown once (and downloadable as text), regenerate them, remove a factor, stop trusting a
device; and the re-authentication page (``/account/reauth``) that the sensitive forms
send the browser to when the API would answer ``step_up_required``.

Each form calls the service of the matching API route (:class:`FactorService`,
:class:`DeviceService`, :class:`StepUpService`), so the rules, audit events and email
notices are the API's. The step-up rule is the API's too (:func:`require_step_up`: an
authentication at most ``auth.step_up_max_age_seconds`` old and, once the account has a
factor, aal2; RFC 9470, NIST SP 800-63B §7.2). Secrets and recovery codes are shown only
on the page that answers the form (200, ``no-store``), never in a URL or a redirect. When
a service gives the session a new pair (first factor, step-up) the old refresh token is
retired, so the cookie takes the new one.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.auth.assurance import second_factors
from atrium.auth.schemas import TokenResponse
from atrium.auth.stepup import StepUpRequired, require_step_up
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed
from atrium.mfa.devices import DeviceService
from atrium.mfa.exceptions import FactorNotFound, TrustedDeviceNotFound
from atrium.mfa.factors import FactorService
from atrium.mfa.schemas import StepUpRequest, TotpEnrolRequest
from atrium.mfa.stepup import StepUpService
from atrium.social.providers import enabled_providers
from atrium.social.service import SocialService, with_query
from atrium.ui.browser import Browser, CsrfProtected, SignedIn, client_of, set_session_cookie
from atrium.ui.errors import on_error
from atrium.ui.login_mfa import parse_credential
from atrium.ui.rendering import redirect, render
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(include_in_schema=False)
NOTICES = {"factor_added", "factor_removed", "device_revoked", "reauthenticated"}
Code = Annotated[str, Form(max_length=64)]


async def _context(browser: Browser, db: DbSession, ctx: Ctx) -> dict[str, object]:
    status = await FactorService(db, ctx).status(browser.principal)
    devices = await DeviceService(db, ctx).list(browser.principal)
    return {
        "section": "mfa",
        "status": status,
        "factors": [f for f in status.factors if f.status == "verified"],
        "devices": devices,
        "email_verified": browser.principal.user.email_verified,
    }


def _adopt(request: Request, response: Response, browser: Browser, tokens: TokenResponse) -> None:
    """Keep the session's new refresh token in the cookie (the old one was retired)."""
    now = request.app.state.ctx.clock.now()
    remaining = max(0, int((browser.session.expires_at - now).total_seconds()))
    set_session_cookie(request, response, tokens.refresh_token, remaining)
    browser.token = tokens.refresh_token


async def step_up_needed(
    request: Request, browser: Browser, ctx: Ctx, back: str = "/account/mfa"
) -> Response | None:
    """None when the session passes the API's step-up rule, else a redirect to the
    re-authentication page, which returns to ``back``. Call it before the page's unit of
    work begins (the rule reads in a session of its own)."""
    try:
        await require_step_up(browser.principal, ctx)
    except StepUpRequired:
        return redirect(request, "/account/reauth?next=" + quote(back, safe=""))
    return None


def _codes_page(request: Request, codes: list[str], first: bool) -> Response:
    text = "\r\n".join(codes) + "\r\n"
    response = render(
        request,
        "account/mfa_codes.html",
        {"section": "mfa", "codes": codes, "first": first, "download": quote(text, safe="")},
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/account/mfa")
async def mfa_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The account's factors, recovery codes left and trusted devices
    (``GET /users/me/mfa``, ``GET /users/me/trusted-devices``)."""
    context = await _context(browser, db, ctx)
    notice = done if done in NOTICES else None
    return render(request, "account/mfa.html", {**context, "notice": notice})


@router.post("/account/mfa/totp", dependencies=[CsrfProtected])
async def enrol_totp(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    name: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Start an authenticator app (``POST /users/me/mfa/totp``): the QR code and the
    secret, on this answer only, with the form to confirm a code."""
    # The step-up rule reads in a session of its own: before this page's unit of work
    # begins (on SQLite that takes the write lock).
    if (answer := await step_up_needed(request, browser, ctx)) is not None:
        return answer
    on_error(request, "account/mfa.html", **await _context(browser, db, ctx), notice=None)
    if not browser.principal.user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    try:
        body = TotpEnrolRequest(name=name.strip() or "Authenticator app")
    except ValidationError as exc:
        raise ValidationFailed("Give the app a name of at most 64 characters.") from exc
    enrolment = await FactorService(db, ctx).enrol_totp(browser.principal, body.name)
    qr = base64.b64encode(enrolment.qr_svg.encode()).decode()
    secret = " ".join(enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4))
    response = render(
        request,
        "account/mfa_totp.html",
        {
            "section": "mfa",
            "factor_id": enrolment.factor_id,
            "qr": "data:image/svg+xml;base64," + qr,
            "secret": secret,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/mfa/totp/{factor_id}/verify", dependencies=[CsrfProtected])
async def verify_totp(
    request: Request,
    factor_id: str,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    code: Code = "",
) -> Response:
    """Confirm the app with a current code (``POST /users/me/mfa/totp/{id}/verify``); the
    first factor shows the ten recovery codes once and raises the session to aal2."""
    on_error(
        request,
        "account/mfa_totp.html",
        section="mfa",
        factor_id=factor_id,
        qr=None,
        secret=None,
    )
    if not browser.principal.user.email_verified:
        raise EmailNotVerified("Verify your email address first.")
    try:
        fid = uuid.UUID(factor_id)
    except ValueError as exc:
        raise FactorNotFound("No such factor.") from exc
    verified = await FactorService(db, ctx).verify_totp(
        browser.principal, fid, code.strip().replace(" ", "")
    )
    if verified.recovery_codes is None:
        return redirect(request, "/account/mfa?done=factor_added")
    response = _codes_page(request, verified.recovery_codes, first=True)
    if verified.tokens is not None:
        _adopt(request, response, browser, verified.tokens)
    return response


@router.post("/account/mfa/recovery-codes", dependencies=[CsrfProtected])
async def regenerate_codes(
    request: Request, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Ten new recovery codes (``POST /users/me/mfa/recovery-codes``), shown once; the
    previous ones stop working."""
    if (answer := await step_up_needed(request, browser, ctx)) is not None:
        return answer
    on_error(request, "account/mfa.html", **await _context(browser, db, ctx), notice=None)
    codes = await FactorService(db, ctx).regenerate_recovery_codes(browser.principal)
    return _codes_page(request, codes.recovery_codes, first=False)


@router.post("/account/mfa/{factor_id}/remove", dependencies=[CsrfProtected])
async def remove_factor(
    request: Request, factor_id: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Remove a factor (``DELETE /users/me/mfa/{id}``); the last one turns MFA off."""
    if (answer := await step_up_needed(request, browser, ctx)) is not None:
        return answer
    on_error(request, "account/mfa.html", **await _context(browser, db, ctx), notice=None)
    try:
        fid = uuid.UUID(factor_id)
    except ValueError as exc:
        raise FactorNotFound("No such factor.") from exc
    await FactorService(db, ctx).remove(browser.principal, fid)
    return redirect(request, "/account/mfa?done=factor_removed")


@router.post("/account/mfa/devices/{device_id}/revoke", dependencies=[CsrfProtected])
async def revoke_device(
    request: Request, device_id: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Stop trusting a device (``DELETE /users/me/trusted-devices/{id}``)."""
    on_error(request, "account/mfa.html", **await _context(browser, db, ctx), notice=None)
    try:
        did = uuid.UUID(device_id)
    except ValueError as exc:
        raise TrustedDeviceNotFound("No such trusted device.") from exc
    await DeviceService(db, ctx).revoke(browser.principal, did)
    return redirect(request, "/account/mfa?done=device_revoked")


# --- re-authentication (step-up) -------------------------------------------------------------


def _back(next: str | None) -> str:
    """Only the account pages and the console are return targets of a re-authentication
    (Atrium's own paths: never another site)."""
    if (
        next
        and next.startswith(("/account", "/admin"))
        and "//" not in next
        and "\\" not in next
        and not any(ord(c) < 32 for c in next)
    ):
        return next
    return "/account/mfa"


async def _reauth_context(
    browser: Browser, db: DbSession, ctx: Ctx, next: str | None
) -> dict[str, object]:
    types = {f.type for f in await second_factors(db, browser.user_id)}
    mfa = bool(types)
    back = _back(next)
    identities, has_password = await SocialService(db, ctx).identities(browser.user_id)
    return {
        "section": "mfa",
        "next": back,
        "ask_code": "totp" in types,
        "ask_recovery": mfa,
        "ask_passkey": "webauthn" in types,
        # The password alone keeps the session's level (NIST SP 800-63B §7.2): enough
        # without MFA, or to refresh an aal2 session; an aal1 session with MFA needs a
        # second factor (a code, a recovery code or a passkey).
        "ask_password": has_password and (not mfa or browser.session.aal >= 2),
        # An account without a password signs in again through one of its linked
        # providers, coming back to ``back`` (the new session replaces this one).
        "providers": []
        if has_password
        else [
            {
                "name": p.display_name,
                "href": with_query(f"/api/v1/auth/oauth/{p.id}/authorize", redirect_to=back),
            }
            for p in await enabled_providers(db, ctx.settings)
            if p.id in {i.provider for i in identities}
        ],
    }


@router.get("/account/reauth")
async def reauth_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    next: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """Confirm it is you: the password or a second factor (``POST /auth/step-up``); an
    account without a password signs in again through one of its linked providers."""
    return render(request, "account/reauth.html", await _reauth_context(browser, db, ctx, next))


@router.post("/account/reauth", dependencies=[CsrfProtected])
async def reauth(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Code = "",
    recovery_code: Code = "",
    credential: Annotated[str, Form(max_length=16384)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Record a fresh authentication in the browser's session (``POST /auth/step-up``'s
    service: the same rate limit and brute-force throttle) and return to ``next``. A
    passkey's assertion comes in ``credential`` from the page's script."""
    on_error(request, "account/reauth.html", **await _reauth_context(browser, db, ctx, next))
    ip = request.client.host if request.client else "unknown"
    state = await ctx.ratelimiter.hit("login", ip)
    if state is not None:
        request.state.ratelimit = state
    proof: dict[str, Any]
    if credential.strip():
        proof = {"webauthn": parse_credential(credential)}
    elif recovery_code.strip():
        proof = {"recovery_code": recovery_code.strip()}
    elif code.strip():
        proof = {"code": code.strip().replace(" ", "")}
    elif password:
        proof = {"password": password}
    else:
        raise ValidationFailed("Give your password or a code.")
    try:
        body = StepUpRequest(**proof)
    except ValidationError as exc:
        raise ValidationFailed("Give your password or a code.") from exc
    tokens = await StepUpService(db, ctx).step_up(browser.principal, body, client_of(request))
    target = _back(next)
    response = redirect(request, target + ("&" if "?" in target else "?") + "done=reauthenticated")
    _adopt(request, response, browser, tokens)
    return response
