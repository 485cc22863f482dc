"""Browser sessions and CSRF protection of the hosted pages.

A browser is signed in by the cookie ``__Host-atrium_session`` (``HttpOnly``,
``SameSite=Lax``, ``Secure``, ``Path=/``). Its value is the refresh token of an ordinary
Atrium session opened by :meth:`AuthService.login`: the session is listed by
``GET /users/me/sessions``, revoked like any other (a revocation from the API signs the
browser out at its next request), and bound by the same idle and absolute lifetimes
(``auth.refresh_token_idle_ttl_seconds``, ``auth.refresh_token_absolute_ttl_seconds``).
The token is never exchanged; on login a new session (so a new cookie) replaces the old
one, and on a privilege change (password change) the session's token is rotated: a new
one is stored and the old one marked used, so an earlier copy of the cookie stops working
(OWASP Session Management Cheat Sheet, "Renew the Session ID After Any Privilege Level
Change").

The ``__Host-`` prefix needs ``Secure``; browsers accept ``Secure`` cookies over HTTPS and
from loopback hosts (127.0.0.1, localhost). A page served over plain HTTP from any other
host uses the unprefixed name ``atrium_session`` without ``Secure`` (development only).

CSRF: every state-changing form carries ``csrf_token``, an HMAC-SHA256 of a fixed label
keyed with the browser's session secret (the session cookie when signed in, else the
random ``__Host-atrium_csrf`` cookie): OWASP CSRF Prevention Cheat Sheet, "Signed
Double-Submit Cookie" — a page of another site can neither read the cookie nor compute
the token. ``Origin``, when the browser sends a real one, must be Atrium's own as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Form, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.browser_principal import CookieSession, session_store
from atrium.auth.principal import Principal
from atrium.auth.repository import SessionRepository
from atrium.auth.service import ClientInfo, hash_refresh_token, new_refresh_token
from atrium.context import AppContext
from atrium.core.cookies import SESSION_COOKIE as SESSION_COOKIE
from atrium.core.cookies import SESSION_COOKIE_INSECURE as SESSION_COOKIE_INSECURE
from atrium.core.cookies import cookie_is_secure as cookie_is_secure
from atrium.core.cookies import session_cookie_name as session_cookie_name
from atrium.core.cookies import set_session_cookie as set_session_cookie
from atrium.errors import AppError
from atrium.models import RefreshToken
from atrium.notifications.repository import NotificationRepository
from atrium.notifications.schemas import CATEGORIES
from atrium.profiles.preferences import cached_preferences, preferences_of, remember_preferences
from atrium.profiles.schemas import PreferencesRead
from atrium.rbac.resolver import permission_resolver

CSRF_COOKIE = "__Host-atrium_csrf"
CSRF_COOKIE_INSECURE = "atrium_csrf"
CSRF_FIELD = "csrf_token"


class CsrfFailed(AppError):
    status = 403
    code = "csrf_failed"
    title = "The form has expired"


class LoginRequired(AppError):
    """Not signed in: the pages answer with a redirect to /login (never rendered as JSON)."""

    status = 401
    code = "not_authenticated"
    title = "Sign in to continue"


def csrf_cookie_name(request: Request) -> str:
    return CSRF_COOKIE if cookie_is_secure(request) else CSRF_COOKIE_INSECURE


def client_of(request: Request) -> ClientInfo:
    return ClientInfo(
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


@dataclass
class Browser:
    """The signed-in account behind the session cookie, with its roles, permissions and
    preferences (for the pages' theme and language)."""

    principal: Principal
    session: CookieSession
    roles: tuple[str, ...]
    permissions: frozenset[str]
    preferences: PreferencesRead
    token: str
    # Unread notices in the categories the account shows in-app (the header's badge).
    unread_notifications: int = 0

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        session_cookie_name(request),
        path="/",
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def session_token(request: Request) -> str | None:
    raw = request.cookies.get(session_cookie_name(request))
    return raw if raw and len(raw) <= 128 else None


async def load_browser(request: Request, ctx: AppContext) -> Browser | None:
    """The signed-in account of ``request``, or None (no cookie, unknown or used token,
    session revoked, idle or expired, account suspended or deleted).

    The cookie is resolved by the principal store like an API access token
    (:meth:`SessionStore.resolve_cookie`): from the shared cache when it can — the
    session's revocation state is the one the API reads, so a revocation signs the browser
    out on every node at once — otherwise from the database, which also writes
    ``last_used_at`` at most every ``ui.session_touch_interval_seconds`` (the idle lifetime
    counts from it). The roles and permissions come from the RBAC cache (warmed here as
    well, so that the page's services never load it from another connection while the
    page's transaction holds SQLite's write lock), the preferences from the cache or the
    database, and the header's unread count from one query (which also tells whether a
    broadcast is in progress: then the account's notice of it is written first, fan-out
    on read) — all before the page's unit of work begins.
    """
    if hasattr(request.state, "browser"):
        cached: Browser | None = request.state.browser
        return cached
    request.state.browser = None
    raw = session_token(request)
    if raw is None:
        return None
    found = await session_store(ctx).resolve_cookie(
        raw, ctx.clock.now(), touch_after_seconds=ctx.settings.ui.session_touch_interval_seconds
    )
    if found is None:
        return None
    session, principal = found
    await permission_resolver(ctx).graph()
    grants = await ctx.rbac.grants_of(principal.user_id)
    preferences = await cached_preferences(ctx, principal.user_id)
    async with ctx.sessionmaker() as db:
        if preferences is None:
            preferences = await preferences_of(db, principal.user_id)
            await remember_preferences(ctx, principal.user_id, preferences)
        hidden = {c for c in CATEGORIES if not getattr(preferences.notifications, c).in_app}
        inbox = NotificationRepository(db)
        unread, pending = await inbox.unread_count_and_pending(principal.user_id, hidden)
        if pending and await inbox.catch_up_broadcasts(principal.user_id):
            # A broadcast in progress had not reached this account yet: fan-out on read.
            unread = await inbox.unread_count(principal.user_id, hidden)
            await db.commit()
    request.state.principal = principal
    browser = Browser(
        principal=principal,
        session=session,
        roles=grants.roles,
        permissions=grants.permissions,
        preferences=preferences,
        token=raw,
        unread_notifications=unread,
    )
    request.state.browser = browser
    return browser


async def _optional_browser(request: Request) -> Browser | None:
    return await load_browser(request, request.app.state.ctx)


async def _required_browser(request: Request) -> Browser:
    browser = await load_browser(request, request.app.state.ctx)
    if browser is None:
        raise LoginRequired()
    return browser


MaybeSignedIn = Annotated[Browser | None, Depends(_optional_browser)]
"""The signed-in browser or None (public pages)."""

SignedIn = Annotated[Browser, Depends(_required_browser)]
"""A signed-in browser; others are redirected to /login?next=<this page>."""


async def rotate_session_token(
    request: Request, response: Response, db: AsyncSession, ctx: AppContext, browser: Browser
) -> None:
    """Give the session a new token (cookie) and retire the current one, after a
    privilege change: a copy of the old cookie no longer signs in."""
    now = ctx.clock.now()
    raw = new_refresh_token()
    sessions = SessionRepository(db)
    row = await sessions.get_refresh_token(hash_refresh_token(browser.token))
    if row is not None:
        await sessions.mark_refresh_token_used(row[0].id, now)
    # The old cookie stops working on every node at once (or 503, nothing changed).
    session_store(ctx).cookie_session_changed_on_commit(db, [browser.session.id])
    await sessions.add_refresh_token(
        RefreshToken(
            id=uuid.uuid4(),
            session_id=browser.session.id,
            token_hash=hash_refresh_token(raw),
            created_at=now,
        )
    )
    set_session_cookie(request, response, raw, _remaining(browser.session, now))
    browser.token = raw


def _remaining(session: CookieSession, now: datetime) -> int:
    return max(0, int((session.expires_at - now).total_seconds()))


# --- CSRF ---------------------------------------------------------------------------------


def _csrf_secret(request: Request) -> str | None:
    return session_token(request) or request.cookies.get(csrf_cookie_name(request))


def _token_for(secret: str) -> str:
    return hmac.new(secret.encode(), b"atrium-csrf-v1", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token to put in this page's forms. Creates the anonymous CSRF cookie when the
    browser has neither it nor a session (set on the response by the renderer)."""
    secret = getattr(request.state, "csrf_secret", None) or _csrf_secret(request)
    if secret is None:
        secret = secrets.token_urlsafe(32)
        request.state.new_csrf_secret = secret
    request.state.csrf_secret = secret
    return _token_for(secret)


def set_csrf_cookie_if_new(request: Request, response: Response) -> None:
    secret = getattr(request.state, "new_csrf_secret", None)
    if secret is not None:
        response.set_cookie(
            csrf_cookie_name(request),
            secret,
            path="/",
            secure=cookie_is_secure(request),
            httponly=True,
            samesite="lax",
        )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    # Absent from older browsers; "null" whenever the page's referrer policy is
    # no-referrer, as Atrium's is. The token is the defence; a foreign origin is refused.
    if origin is None or origin == "null":
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own


async def _check_csrf(
    request: Request, csrf_token: Annotated[str, Form(max_length=128)] = ""
) -> None:
    """Refuse a state-changing form without a valid token (403 ``csrf_failed``)."""
    secrets_ = [
        s for s in (session_token(request), request.cookies.get(csrf_cookie_name(request))) if s
    ]
    valid = any(hmac.compare_digest(_token_for(s), csrf_token) for s in secrets_)
    if not csrf_token or not valid or not _same_origin(request):
        raise CsrfFailed("The form has expired or did not come from this site; try again.")


CsrfProtected = Depends(_check_csrf)
"""Add to ``dependencies=[...]`` of every route that changes state."""
