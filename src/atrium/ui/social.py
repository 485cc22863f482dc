"""Social login in the hosted pages: the link-confirmation page (``/login/link``) and the
account's sign-in methods (``/account/connections``). The pages call the services of
``atrium.social`` and ``AuthService.login`` (password, throttling, audit), as the API does.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from atrium.auth.exceptions import MfaRequired
from atrium.auth.service import AuthService
from atrium.auth.stepup import StepUpRequired, require_step_up
from atrium.context import Ctx
from atrium.core.cookies import cookie_name, delete_cookie, set_cookie
from atrium.core.db import DbSession
from atrium.errors import AppError
from atrium.social.exceptions import (
    IdentityNotFound,
    InvalidLinkTicket,
    LastLoginMethod,
    ProviderNotFound,
)
from atrium.social.flow import STATE_TTL_SECONDS
from atrium.social.linking import LinkingService
from atrium.social.providers import enabled_providers, get_provider
from atrium.social.service import (
    BINDING_COOKIE,
    LINK_COOKIE,
    LINK_PAGE,
    SocialService,
    binding_of,
    with_query,
)
from atrium.ui.account_mfa import step_up_needed
from atrium.ui.browser import (
    Browser,
    CsrfProtected,
    MaybeSignedIn,
    SignedIn,
    client_of,
    set_session_cookie,
)
from atrium.ui.errors import error_message, on_error
from atrium.ui.login_mfa import start_second_step
from atrium.ui.rendering import redirect, render, secure_page
from atrium.users.repository import UserRepository

router = APIRouter(include_in_schema=False)

CONNECTION_NOTICES = {"identity_linked", "identity_unlinked", "reauthenticated"}
CONNECTIONS = "/account/connections"


async def login_buttons(request: Request, db: Any, next_path: str | None) -> list[dict[str, str]]:
    """The providers' buttons of the login page: each starts the flow and comes back to
    ``next_path`` (a local path) or the default page."""
    ctx = request.app.state.ctx
    target = (
        next_path
        if next_path and next_path.startswith("/") and not next_path.startswith("//")
        else ctx.settings.ui.default_redirect
    )
    return [
        {
            "id": p.id,
            "name": p.display_name,
            "href": with_query(f"/api/v1/auth/oauth/{p.id}/authorize", redirect_to=target),
        }
        for p in await enabled_providers(db, ctx.settings)
    ]


def _ticket(request: Request) -> str:
    raw = request.cookies.get(cookie_name(request, LINK_COOKIE), "")
    return raw if 0 < len(raw) <= 128 else ""


async def _pending(request: Request, db: Any, ctx: Any) -> dict[str, Any]:
    ticket = _ticket(request)
    if not ticket:
        raise InvalidLinkTicket("The link confirmation has expired; sign in again.")
    payload = await LinkingService(db, ctx).pending_link(ticket)
    try:
        provider = (
            await get_provider(db, ctx.settings, payload["provider"], enabled=False)
        ).display_name
    except ProviderNotFound:
        provider = payload["provider"]
    user = await UserRepository(db).get(uuid.UUID(payload["user_id"]))
    return {"provider": provider, "email": user.email if user else "", "payload": payload}


async def _recent(browser: Browser | None, ctx: Any) -> bool:
    """Whether the signed-in browser passes the API's step-up rule (a recent
    authentication, at aal2 when the account has MFA). Reads in a session of its own:
    call it before the page's unit of work begins."""
    if browser is None:
        return False
    try:
        await require_step_up(browser.principal, ctx)
    except StepUpRequired:
        return False
    return True


def _owner_is_here(browser: Browser | None, recent: bool, pending: dict[str, Any]) -> bool:
    return recent and browser is not None and str(browser.user_id) == pending["payload"]["user_id"]


@router.get("/login/link")
async def link_page(request: Request, browser: MaybeSignedIn, db: DbSession, ctx: Ctx) -> Response:
    """The owner of the account with the provider's email proves it before the identity
    is attached: its password (and then its second factor when the account has MFA), or,
    already signed in to it with a recent authentication, one button (public)."""
    recent = await _recent(browser, ctx)
    on_error(request, "login_link.html", provider="", email="", owner=False)
    pending = await _pending(request, db, ctx)
    return render(
        request,
        "login_link.html",
        {
            "provider": pending["provider"],
            "email": pending["email"],
            "owner": _owner_is_here(browser, recent, pending),
        },
    )


@router.post("/login/link", dependencies=[CsrfProtected])
async def confirm_link(
    request: Request,
    browser: MaybeSignedIn,
    db: DbSession,
    ctx: Ctx,
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Attach the pending identity once the account's owner has proven it (public).

    Signed in to that account with a recent authentication (the step-up rule of the API),
    the identity is attached at once. Otherwise the password signs in as ``POST /login``
    does (rate limit, throttle, audit of a login); an account with MFA then goes through
    ``/login/mfa`` and comes back here signed in at aal2, and the link is confirmed
    with one more button. No trusted device skips that second factor here."""
    recent = await _recent(browser, ctx)
    pending = await _pending(request, db, ctx)
    owner = _owner_is_here(browser, recent, pending)
    on_error(
        request,
        "login_link.html",
        provider=pending["provider"],
        email=pending["email"],
        owner=owner,
    )
    auth = AuthService(db, ctx)
    tokens = None
    if not owner:
        ip = request.client.host if request.client else "unknown"
        state = await ctx.ratelimiter.hit("login", ip)
        if state is not None:
            request.state.ratelimit = state
        try:
            tokens = await auth.login(pending["email"], password, client_of(request))
        except MfaRequired as step:  # the challenge is kept: this request commits
            return start_second_step(request, step, LINK_PAGE)
    user = await UserRepository(db).get(uuid.UUID(pending["payload"]["user_id"]))
    assert user is not None
    payload = await LinkingService(db, ctx).confirm_link(_ticket(request), user)
    target = payload.get("redirect_to") or ctx.settings.ui.default_redirect
    if payload.get("code_challenge"):
        code = await SocialService(db, ctx).issue_login_code(
            user.id, payload["code_challenge"], f"social:{payload['provider']}"
        )
        response = RedirectResponse(with_query(target, login_code=code), status_code=303)
        secure_page(request, response)
    else:
        response = redirect(request, target)
    if tokens is not None:
        if browser is not None:  # a second sign-in in one browser ends the first session
            await auth.logout(browser.principal, None)
        set_session_cookie(
            request,
            response,
            tokens.refresh_token,
            ctx.settings.auth.refresh_token_absolute_ttl_seconds,
        )
    delete_cookie(request, response, LINK_COOKIE)
    return response


# --- the account's sign-in methods -----------------------------------------------------------


async def _connections(
    request: Request,
    browser: Any,
    db: Any,
    ctx: Any,
    notice: str | None,
    error: AppError | None = None,
) -> Response:
    items, has_password = await SocialService(db, ctx).identities(browser.user_id)
    providers = await enabled_providers(db, ctx.settings)
    names = {p.id: p.display_name for p in providers}
    return render(
        request,
        "account/connections.html",
        {
            "section": "connections",
            "identities": [{"row": i, "name": names.get(i.provider, i.provider)} for i in items],
            "providers": providers,
            "has_password": has_password,
            "notice": notice,
            "error_message": error_message(error) if error else None,
        },
        status_code=error.status if error else 200,
    )


@router.get("/account/connections")
async def connections_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The identities linked to the account, and buttons to link more."""
    notice = done if done in CONNECTION_NOTICES else None
    return await _connections(request, browser, db, ctx, notice)


@router.post("/account/connections/{provider}/link", dependencies=[CsrfProtected])
async def link_provider(
    request: Request, provider: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Start linking ``provider`` to the signed-in account (``POST /users/me/identities``).
    As for the API, a session without a recent authentication (at aal2 when the account
    has MFA) goes to ``/account/reauth`` first and comes back to this page."""
    if (answer := await step_up_needed(request, browser, ctx, CONNECTIONS)) is not None:
        return answer
    found = await get_provider(db, ctx.settings, provider[:40])
    binding = binding_of(request)
    url = await SocialService(db, ctx).begin(
        found,
        "/account/connections?done=identity_linked",
        None,
        link_user_id=browser.user_id,
        binding=binding,
    )
    response = RedirectResponse(url, status_code=303)
    secure_page(request, response)
    set_cookie(request, response, BINDING_COOKIE, binding, STATE_TTL_SECONDS)
    return response


@router.post("/account/connections/{identity_id}/unlink", dependencies=[CsrfProtected])
async def unlink(
    request: Request, identity_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Remove a linked identity (``DELETE /users/me/identities/{id}``); a recent
    authentication is needed first, as for linking."""
    if (answer := await step_up_needed(request, browser, ctx, CONNECTIONS)) is not None:
        return answer
    try:
        await SocialService(db, ctx).unlink(browser.user_id, identity_id)
    except (IdentityNotFound, LastLoginMethod) as exc:  # nothing was written
        return await _connections(request, browser, db, ctx, None, error=exc)
    return redirect(request, "/account/connections?done=identity_unlinked")
