"""The browser cookies Atrium sets: the session cookie of the hosted pages and the short-
lived cookies of the browser flows, with their ``__Host-`` names.

The ``__Host-`` prefix needs ``Secure``; browsers accept ``Secure`` cookies over HTTPS and
from loopback hosts (127.0.0.1, localhost). A page served over plain HTTP from any other
host uses the unprefixed name without ``Secure`` (development only).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "__Host-atrium_session"
SESSION_COOKIE_INSECURE = "atrium_session"
MFA_PENDING_COOKIE = "atrium_mfa"
"""Name (before its prefix) of the cookie that keeps a pending sign-in's ``mfa_token``
between the first factor (password, or an identity provider) and ``/login/mfa``."""
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def cookie_is_secure(request: Request) -> bool:
    """True over HTTPS, and for loopback hosts (browsers treat them as secure contexts)."""
    return request.url.scheme == "https" or (request.url.hostname or "") in _LOOPBACK


def cookie_name(request: Request, name: str) -> str:
    """``__Host-<name>`` where the browser keeps it, else ``<name>``."""
    return f"__Host-{name}" if cookie_is_secure(request) else name


def session_cookie_name(request: Request) -> str:
    return SESSION_COOKIE if cookie_is_secure(request) else SESSION_COOKIE_INSECURE


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set ``name`` (prefixed as :func:`cookie_name` says): ``HttpOnly``, ``SameSite=Lax``,
    ``Path=/``, ``Secure`` when the browser keeps it."""
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        cookie_name(request, name),
        path="/",
        secure=cookie_is_secure(request),
        httponly=True,
        samesite="lax",
    )


def set_session_cookie(request: Request, response: Response, raw: str, max_age: int) -> None:
    """The hosted pages' session cookie (ui/browser.py): an Atrium session's token."""
    set_cookie(request, response, "atrium_session", raw, max_age)
