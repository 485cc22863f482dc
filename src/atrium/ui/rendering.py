"""Rendering pages: one Jinja2 environment, the page's language and theme, security
headers.

Every page answer carries a strict Content Security Policy (only Atrium's own scripts
and styles, no inline code, ``frame-ancestors 'none'``), ``Cache-Control: no-store``
(pages show account data) and, for a new anonymous visitor, the CSRF cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from atrium.config import Settings
from atrium.core.apps import PageLink
from atrium.core.templates import AppTemplateLoader
from atrium.rbac.permissions import is_known
from atrium.ui.assets import asset_url
from atrium.ui.browser import Browser, csrf_token, set_csrf_cookie_if_new
from atrium.ui.i18n import LANGUAGES, catalog, choose_language, register_catalogs


def page_csp(settings: Settings) -> str:
    """The pages' CSP (W3C CSP Level 3). Logos and avatars may come from HTTPS origins
    (object storage); a form may post back only to Atrium, and a sign-in may redirect to
    the allowed application origins."""
    form_targets = " ".join(["'self'", *settings.ui.allowed_redirect_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' https: data: blob:; font-src 'self'; connect-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action {form_targets}; "
        "frame-ancestors 'none'"
    )


def when(value: datetime | None) -> Markup:
    """``value`` (UTC) as ``<time datetime="ISO 8601">YYYY-MM-DD HH:MM UTC</time>``, or an
    em dash: the ``when`` macro as a filter, for table rows (a macro call costs tens of
    microseconds, a filter about one)."""
    if not value:
        return Markup("—")
    # Digits, "-", ":", "+", "T" and "." only: nothing to escape.
    stamp = f'<time datetime="{value.isoformat()}">{value.strftime("%Y-%m-%d %H:%M")} UTC</time>'
    return Markup(stamp)  # noqa: S704  # nosec B704


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> Environment:
    """One environment per language, its catalog installed: templates are compiled once
    per process and language (an overlay per request would compile them every time)."""
    # The platform's templates, then the applications' ("<app>/<file>", core.templates).
    env = Environment(
        loader=ChoiceLoader([PackageLoader("atrium.ui", "templates"), AppTemplateLoader()]),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship inside the package: no file-time check on every render.
        auto_reload=False,
    )
    env.globals["asset"] = asset_url
    env.filters["when"] = when
    env.globals["languages"] = LANGUAGES
    env.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def register_page_catalogs(directory: Path) -> None:
    """Translate the pages with ``directory``'s catalogs too (an application's
    ``locale``); environments built before are rebuilt."""
    register_catalogs(directory)
    environment.cache_clear()


@dataclass(frozen=True)
class Theme:
    """Preferences applied to the page: ``data-theme`` (absent for ``system``), reduced
    motion, high contrast and a font scale in percent (one of the stylesheet's steps)."""

    theme: str | None
    reduced_motion: bool
    high_contrast: bool
    font_scale: int


FONT_STEPS = (75, 90, 100, 112, 125, 150, 175, 200, 250, 300)


def theme_of(browser: Browser | None) -> Theme:
    if browser is None:
        return Theme(None, False, False, 100)
    prefs = browser.preferences
    scale = round(prefs.accessibility.font_scale * 100)
    step = min(FONT_STEPS, key=lambda s: abs(s - scale))
    return Theme(
        theme=None if prefs.theme == "system" else prefs.theme,
        reduced_motion=prefs.accessibility.reduced_motion,
        high_contrast=prefs.accessibility.high_contrast,
        font_scale=step,
    )


def language_of(request: Request, browser: Browser | None) -> str:
    return choose_language(
        browser.preferences.language if browser else None,
        browser.principal.user.locale if browser else None,
        request.headers.get("accept-language"),
    )


def app_links(request: Request, kind: str) -> list[PageLink]:
    """The navigation links the running applications add (``kind``: ``console`` or
    ``account``) that the signed-in browser may follow, in the order of ``ATRIUM_APPS``."""
    browser: Browser | None = getattr(request.state, "browser", None)
    if browser is None:
        return []
    apps = getattr(request.app.state.ctx, "apps", {})
    return [
        link
        for loaded in apps.values()
        for link in getattr(loaded.app, f"{kind}_links")
        if link.permission is None
        or (is_known(link.permission) and link.permission in browser.permissions)
    ]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` for ``request`` in the visitor's language and theme."""
    settings: Settings = request.app.state.ctx.settings
    browser: Browser | None = getattr(request.state, "browser", None)
    language = language_of(request, browser)
    env = environment(language)
    values = {
        "request": request,
        "lang": language,
        "browser": browser,
        "me": browser.principal.user if browser else None,
        "can": (lambda p: browser is not None and is_known(p) and p in browser.permissions),
        "theme": theme_of(browser),
        "product": settings.product_name,
        "branding": settings.branding,
        "csrf_token": csrf_token(request),
        "path": request.url.path,
        "console_links": app_links(request, "console"),
        "account_links": app_links(request, "account"),
        **(context or {}),
    }
    body = env.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    secure_page(request, response)
    set_csrf_cookie_if_new(request, response)
    return response


def secure_page(request: Request, response: HTMLResponse | RedirectResponse) -> None:
    settings: Settings = request.app.state.ctx.settings
    response.headers["Content-Security-Policy"] = page_csp(settings)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, Accept-Language"


def redirect(request: Request, url: str) -> RedirectResponse:
    """303 See Other to ``url`` (POST-redirect-GET)."""
    response = RedirectResponse(url, status_code=303)
    secure_page(request, response)
    return response


def safe_next(target: str | None, settings: Settings) -> str:
    """``target`` when it is safe to send a signed-in browser there, else the default.

    Allowed: a path of Atrium's own (``/…``, never ``//host`` or ``/\\host``, which
    browsers read as another host) without control characters, or a URL whose origin is
    listed in ``ui.allowed_redirect_origins`` (OWASP Unvalidated Redirects and Forwards
    Cheat Sheet: allow-list).
    """
    fallback = settings.ui.default_redirect
    if not target or len(target) > 2048 or any(ord(c) < 32 or c == "\\" for c in target):
        return fallback
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc:
        if target.startswith("/") and not target.startswith("//"):
            return target
        return fallback
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {o.rstrip("/").lower() for o in settings.ui.allowed_redirect_origins}
    if parts.scheme in ("https", "http") and origin in allowed:
        return target
    return fallback
