"""How the pages answer errors: the form again with the message, a sign-in redirect, or an
error page — never problem+json, and never a traceback.

A page that submits a form registers what to show on failure with :func:`on_error`
before it calls a service; the service's :class:`AppError` then propagates as it does for
the API (so the request's unit of work rolls back, or commits when the error preserves
its changes) and is rendered here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from atrium.auth.stepup import StepUpRequired
from atrium.errors import AppError
from atrium.ui.browser import LoginRequired
from atrium.ui.i18n import _
from atrium.ui.rendering import redirect, render

# Messages by error code, translated on the page; others show the service's own detail.
MESSAGES: dict[str, str] = {
    "invalid_credentials": _("The email or password is incorrect."),
    "login_throttled": _("Too many failed sign-in attempts. Wait a moment and try again."),
    "rate_limited": _("Too many requests. Wait a moment and try again."),
    "email_taken": _("An account with this email address already exists."),
    "invalid_email": _("This is not a valid email address."),
    "weak_password": _(
        "Choose a stronger password: at least 8 characters, not a common password and "
        "not containing your email address."
    ),
    "invalid_token": _("This link is invalid, was already used or has expired."),
    "incorrect_password": _("The password is incorrect."),
    "invalid_oauth_state": _(
        "This sign-in attempt has expired or was started in another browser. Try again."
    ),
    "issuer_mismatch": _("The sign-in answer did not come from the provider. Try again."),
    "invalid_id_token": _("The provider's answer could not be verified. Try again."),
    "authorization_denied": _("The provider did not confirm the sign-in."),
    "provider_unavailable": _("The provider could not be reached. Try again later."),
    "provider_email_missing": _("The provider did not share an email address."),
    "identity_linked_elsewhere": _("This account is already linked to another user."),
    "invalid_link_ticket": _("The link confirmation has expired. Sign in again."),
    "last_login_method": _("This is your only way to sign in; set a password first."),
    "account_suspended": _("The account is suspended; contact an administrator."),
    "csrf_failed": _("The form has expired or did not come from this site. Please try again."),
    "email_unchanged": _("This is already your email address."),
    "permission_denied": _("You do not have permission to do this."),
    "escalation_refused": _(
        "You cannot act on an account or role with more permissions than yours."
    ),
    "last_superadmin": _("This would leave no active superadmin."),
    "role_cycle": _("A role cannot inherit from itself, directly or through other roles."),
    "username_taken": _("This username is taken."),
    "validation_failed": _("Some fields are not valid."),
    "passwords_differ": _("The two passwords differ."),
    "invalid_otp": _("The code is not valid. Check your device's clock and try again."),
    "invalid_mfa_token": _("This sign-in has expired or was started elsewhere. Sign in again."),
    "unsupported_method": _("Your account has no second factor; use your password."),
    "email_not_verified": _("Verify your email address first."),
    "too_many_factors": _("Your account has as many factors as it may have; remove one first."),
    "factor_not_found": _("This factor no longer exists."),
    "factor_already_verified": _("This factor is already set up."),
    "mfa_not_enabled": _("Set up two-step verification first."),
    "trusted_device_not_found": _("This device is no longer trusted."),
    "invalid_passkey": _("The passkey could not be verified. Try again."),
    "invalid_challenge": _("The passkey request has expired. Try again."),
    "passkey_exists": _("This passkey is already registered."),
    "passkey_registration_failed": _("The passkey could not be registered. Try again."),
    "passkey_not_found": _("This passkey no longer exists."),
    "passkey_limit_reached": _(
        "Your account has as many passkeys as it may have; remove one first."
    ),
    "no_passkey": _("Your account has no passkey."),
    "mfa_enrollment_required": _(
        "A role of your account requires two-step verification: set it up first."
    ),
    "step_up_required": _(
        "This needs a recent sign-in with two-step verification: set it up on your own "
        "account first."
    ),
}


@dataclass
class FormError:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


def on_error(request: Request, template: str, **context: Any) -> None:
    """If the service call that follows raises, show ``template`` with ``context`` and
    the error's message (status of the error)."""
    request.state.ui_form = FormError(template, context)


# The provider sends the browser back to this API route; a browser (it asks for HTML)
# sees its errors as a page, an API client as problem details.
BROWSER_API_ENDPOINTS = {("atrium.social.router", "callback")}
# Modules of the applications' hosted pages (``ui.router.install_app_pages``).
PAGE_MODULES: set[str] = set()


def is_page(request: Request) -> bool:
    route = request.scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    module = getattr(endpoint, "__module__", "")
    if module.startswith("atrium.ui.") or module in PAGE_MODULES:
        return True
    name = getattr(endpoint, "__name__", "")
    accepts_html = "text/html" in request.headers.get("accept", "")
    return (module, name) in BROWSER_API_ENDPOINTS and accepts_html


def error_message(exc: AppError) -> str:
    return MESSAGES.get(exc.code) or exc.detail or exc.title


def _returnable(request: Request) -> bool:
    """A page the re-authentication page returns to (see ``account_mfa._back``)."""
    return request.url.path.startswith(("/account", "/admin"))


def page_for_error(request: Request, exc: AppError) -> Response:
    if isinstance(exc, LoginRequired):
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return redirect(request, "/login?next=" + quote(target, safe=""))
    if isinstance(exc, StepUpRequired) and request.method == "GET" and _returnable(request):
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        return redirect(request, "/account/reauth?next=" + quote(target, safe=""))
    form: FormError | None = getattr(request.state, "ui_form", None)
    status = exc.status
    if form is not None:
        context = {**form.context, "error": exc.code, "error_message": error_message(exc)}
        return render(request, form.template, context, status_code=status, headers=exc.headers)
    return render(
        request,
        "error.html",
        {"status": status, "error": exc.code, "error_message": error_message(exc)},
        status_code=status,
        headers=exc.headers,
    )


def install_page_errors(app: FastAPI) -> None:
    """Wrap the API's handlers: errors of page routes render HTML, others as before."""
    api_app_error = app.exception_handlers[AppError]
    api_validation = app.exception_handlers[RequestValidationError]

    def wrap(
        api: Callable[[Request, Any], Awaitable[Response] | Response],
        page: Callable[[Request, Any], Response],
    ) -> Callable[[Request, Any], Awaitable[Response]]:
        async def handler(request: Request, exc: Any) -> Response:
            if is_page(request):
                return page(request, exc)
            result = api(request, exc)
            return await result if isinstance(result, Awaitable) else result

        return handler

    def invalid_form(request: Request, exc: RequestValidationError) -> Response:
        form: FormError | None = getattr(request.state, "ui_form", None)
        context = {"status": 422, "error": "validation_failed"}
        message = MESSAGES["validation_failed"]
        if form is not None:
            return render(
                request,
                form.template,
                {**form.context, **context, "error_message": message},
                status_code=422,
            )
        return render(request, "error.html", {**context, "error_message": message}, status_code=422)

    app.add_exception_handler(AppError, wrap(api_app_error, page_for_error))
    app.add_exception_handler(RequestValidationError, wrap(api_validation, invalid_form))
