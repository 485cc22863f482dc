"""The account's API keys page (``/account/api-keys``): list, create with scopes (the key is
shown once, on the page that answers the form, never in a URL), revoke. Each form calls
:class:`atrium.apikeys.service.ApiKeyService`, as ``/api/v1/users/me/api-keys`` does, so
the scope rules, limits, audit events and notices are the API's."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.apikeys.exceptions import ApiKeyNotFound
from atrium.apikeys.schemas import ApiKeyCreate
from atrium.apikeys.service import ApiKeyService
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed
from atrium.ui.account_mfa import step_up_needed
from atrium.ui.browser import Browser, CsrfProtected, SignedIn
from atrium.ui.errors import on_error
from atrium.ui.rendering import redirect, render

router = APIRouter(prefix="/account/api-keys", include_in_schema=False)
NOTICES = {"api_key_revoked", "reauthenticated"}
LIFETIMES = (30, 90, 365)


async def _context(browser: Browser, db: DbSession, ctx: Ctx) -> dict[str, object]:
    keys = await ApiKeyService(db, ctx).list_of(browser.user_id)
    return {
        "section": "api_keys",
        "keys": keys,
        "scopes": sorted(browser.permissions),
        "lifetimes": LIFETIMES,
        "now": ctx.clock.now(),
    }


@router.get("")
async def api_keys_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """The account's API keys (``GET /users/me/api-keys``) and the form for a new one."""
    context = await _context(browser, db, ctx)
    notice = done if done in NOTICES else None
    return render(request, "account/api_keys.html", {**context, "notice": notice})


@router.post("", dependencies=[CsrfProtected])
async def create_api_key(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    name: Annotated[str, Form(max_length=1024)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=100)] = None,
    expires_in_days: Annotated[int, Form(ge=1, le=3650)] = 90,
) -> Response:
    """Create a key (``POST /users/me/api-keys``) and show it this once: the answer is the
    page itself (200), so the key never travels in a URL or a redirect. As for the API,
    a session without a recent authentication goes to ``/account/reauth`` first."""
    if (answer := await step_up_needed(request, browser, ctx, "/account/api-keys")) is not None:
        return answer
    on_error(request, "account/api_keys.html", **await _context(browser, db, ctx), notice=None)
    try:
        body = ApiKeyCreate(name=name.strip(), scopes=scopes or [], expires_in_days=expires_in_days)
    except ValidationError as exc:
        raise ValidationFailed("Give the key a name of at most 100 characters.") from exc
    created = await ApiKeyService(db, ctx).create(browser.user_id, body)
    context = await _context(browser, db, ctx)
    response = render(
        request, "account/api_keys.html", {**context, "created": created, "notice": None}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/{key_id}/revoke", dependencies=[CsrfProtected])
async def revoke_api_key(
    request: Request, key_id: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke a key (``DELETE /users/me/api-keys/{id}``): refused on every node at once."""
    on_error(request, "account/api_keys.html", **await _context(browser, db, ctx), notice=None)
    try:
        kid = uuid.UUID(key_id)
    except ValueError as exc:
        raise ApiKeyNotFound("No such API key.") from exc
    await ApiKeyService(db, ctx).revoke(
        browser.user_id, kid, actor_id=browser.user_id, by_admin=False
    )
    return redirect(request, "/account/api-keys?done=api_key_revoked")
