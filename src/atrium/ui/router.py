"""Mounts the pages, the console and their static files on the application."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response

from atrium.config import Settings
from atrium.errors import NotFound
from atrium.ui.account import router as account_router
from atrium.ui.account_keys import router as account_keys_router
from atrium.ui.account_mfa import router as account_mfa_router
from atrium.ui.admin import router as admin_router
from atrium.ui.admin_analytics import router as admin_analytics_router
from atrium.ui.admin_roles import router as admin_roles_router
from atrium.ui.admin_users import router as admin_users_router
from atrium.ui.assets import IMMUTABLE, asset_index
from atrium.ui.errors import PAGE_MODULES, install_page_errors
from atrium.ui.live import router as live_router
from atrium.ui.login_mfa import router as login_mfa_router
from atrium.ui.passkeys import router as passkeys_router
from atrium.ui.public import router as public_router
from atrium.ui.social import router as social_router

static_router = APIRouter(include_in_schema=False)

# Uploads posted to the pages get the same body allowance as their API routes.
UPLOAD_PATHS = {("POST", "/account/avatar")}


def branding_css(settings: Settings) -> str:
    """The primary colour of ``branding.primary_color`` as Pico CSS variables: buttons in
    every scheme, links in the light scheme (dark keeps Pico's lighter link colour, for
    contrast)."""
    colour = settings.branding.primary_color
    buttons = (
        f"--pico-primary-background:{colour};--pico-primary-border:{colour};"
        f"--pico-primary-hover-background:{colour};--pico-primary-hover-border:{colour};"
    )
    links = f"--pico-primary:{colour};--pico-primary-hover:{colour};"
    return (
        f":root{{{buttons}}}\n"
        f"[data-theme=light]{{{links}}}\n"
        f"@media (prefers-color-scheme: light){{:root:not([data-theme=dark]){{{links}}}}}\n"
    )


@static_router.get("/ui/branding.css")
async def branding(request: Request) -> Response:
    """The branding stylesheet (public)."""
    body = branding_css(request.app.state.ctx.settings)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
    return Response(
        body,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "ETag": etag},
    )


@static_router.get("/ui/static/{name:path}")
async def static(name: str) -> Response:
    """A static file under its hashed name, cached for a year (public)."""
    asset = asset_index().files.get(name)
    if asset is None:
        raise NotFound("No such file.")
    return FileResponse(
        asset.path, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE}
    )


def install_ui(app: FastAPI) -> None:
    """Add the pages and the console to ``app`` (after the API's error handlers)."""
    install_page_errors(app)
    app.include_router(static_router)
    app.include_router(public_router)
    app.include_router(social_router)
    app.include_router(login_mfa_router)
    app.include_router(account_router)
    app.include_router(live_router)
    app.include_router(account_keys_router)
    app.include_router(account_mfa_router)
    app.include_router(passkeys_router)
    app.include_router(admin_router)
    app.include_router(admin_analytics_router)
    app.include_router(admin_users_router)
    app.include_router(admin_roles_router)


def install_app_pages(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Mount an application's hosted pages (``AtriumApp.pages``) after the platform's: their
    errors render as pages, like the platform's (:func:`atrium.ui.errors.is_page`)."""
    for router in routers:
        for route in router.routes:
            endpoint = getattr(route, "endpoint", None)
            if endpoint is not None:
                PAGE_MODULES.add(endpoint.__module__)
        app.include_router(router)
