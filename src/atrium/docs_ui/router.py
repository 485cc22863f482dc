"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from a packaged copy of their assets.

The assets come from the ``fastapi-offline`` package (no CDN). Each page gets a
Content-Security-Policy that allows exactly what it needs: its own scripts and styles from
this origin, the inline bootstrap script by its SHA-256 hash (CSP Level 2 hash-source),
``connect-src 'self'`` for ``/openapi.json``, and for ReDoc the inline styles and blob
workers its bundle creates.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

STATIC_URL = "/docs-assets"
_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _with_csp(page: HTMLResponse, *, extra: str = "") -> HTMLResponse:
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(body)
    )
    policy = (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'" + extra
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": policy})


OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

# Module-level handlers reading the app from the request: a closure per app would keep
# every app ever created alive in FastAPI's cache of endpoint classifications.
router = APIRouter(include_in_schema=False)


def _urls(request: Request) -> tuple[str, str]:
    """The OpenAPI document's URL and the assets' base URL, under the request's root
    path (behind a proxy that mounts Atrium below a prefix)."""
    root = request.scope.get("root_path", "")
    return f"{root}{request.app.openapi_url}", f"{root}{STATIC_URL}"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    openapi_url, assets = _urls(request)
    root = request.scope.get("root_path", "")
    return _with_csp(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{request.app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters=request.app.swagger_ui_parameters,
        )
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return _with_csp(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    openapi_url, assets = _urls(request)
    return _with_csp(
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        ),
        extra="; worker-src 'self' blob:",
    )


def install_docs(app: FastAPI) -> None:
    """Mount the assets and the three documentation pages on ``app``.

    ``app`` must be created with ``docs_url=None, redoc_url=None`` and keep FastAPI's
    default ``swagger_ui_oauth2_redirect_url`` (``/docs/oauth2-redirect``).

    Raises:
        ValueError: ``app`` has another OAuth2 redirect URL.
    """
    if app.swagger_ui_oauth2_redirect_url != OAUTH2_REDIRECT_URL:
        raise ValueError(f"the OAuth2 redirect page is served at {OAUTH2_REDIRECT_URL} only")
    app.mount(STATIC_URL, StaticFiles(directory=_ASSETS), name="docs-assets")
    app.include_router(router)
