"""The account pages (``/account``): profile and avatar, preferences, email, password,
sessions, security events, deletion. Each form calls the service the matching API route
calls, so the rules, errors and audit events are the API's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.account.service import AccountService
from atrium.audit.repository import AuditFilter, AuditRepository
from atrium.auth.exceptions import SessionNotFound
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import ValidationFailed
from atrium.profiles.schemas import ProfileUpdate
from atrium.profiles.service import ProfileService
from atrium.ui.browser import CsrfProtected, SignedIn, clear_session_cookie, rotate_session_token
from atrium.ui.errors import on_error
from atrium.ui.i18n import LANGUAGES
from atrium.ui.public import NOTICES, PasswordsDiffer
from atrium.ui.rendering import FONT_STEPS, redirect, render
from atrium.verification.service import AccountEmailService

router = APIRouter(prefix="/account", include_in_schema=False)

Password = Annotated[str, Form(max_length=1024)]
ACCOUNT_NOTICES = NOTICES | {
    "profile_saved",
    "avatar_saved",
    "avatar_removed",
    "preferences_saved",
    "password_changed",
    "email_change_sent",
    "session_revoked",
    "verification_sent",
}


def _notice(done: str | None) -> str | None:
    return done if done in ACCOUNT_NOTICES else None


def _invalid(exc: ValidationError) -> ValidationFailed:
    return ValidationFailed(
        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
    )


async def _profile_context(browser: SignedIn, db: DbSession, ctx: Ctx) -> dict[str, Any]:
    profile = await ProfileService(db, ctx).get_own(browser.principal)
    return {"profile": profile, "section": "profile"}


@router.get("")
async def overview(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Profile and avatar of the signed-in account."""
    context = await _profile_context(browser, db, ctx)
    return render(request, "account/profile.html", {**context, "notice": _notice(done)})


@router.post("/profile", dependencies=[CsrfProtected])
async def save_profile(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    full_name: Annotated[str, Form(max_length=1024)] = "",
    username: Annotated[str, Form(max_length=1024)] = "",
    display_name: Annotated[str, Form(max_length=1024)] = "",
    bio: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Save the name (``PATCH /users/me``) and the profile (``PATCH /users/me/profile``)."""
    on_error(request, "account/profile.html", **await _profile_context(browser, db, ctx))
    try:
        update = ProfileUpdate.model_validate(
            {
                "username": username.strip() or None,
                "display_name": display_name.strip() or None,
                "bio": bio.strip() or None,
            }
        )
    except ValidationError as exc:
        raise _invalid(exc) from exc
    await AccountService(db, ctx).update(
        browser.principal, {"full_name": full_name.strip()[:200] or None}
    )
    await ProfileService(db, ctx).update_own(
        browser.principal, update.model_dump(include={"username", "display_name", "bio"})
    )
    return redirect(request, "/account?done=profile_saved")


@router.post("/avatar", dependencies=[CsrfProtected])
async def save_avatar(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    avatar: Annotated[UploadFile, File()],
) -> Response:
    """Replace the avatar (``PUT /users/me/avatar``)."""
    on_error(request, "account/profile.html", **await _profile_context(browser, db, ctx))
    await ProfileService(db, ctx).set_avatar(browser.principal, avatar)
    return redirect(request, "/account?done=avatar_saved")


@router.post("/avatar/delete", dependencies=[CsrfProtected])
async def delete_avatar(request: Request, browser: SignedIn, db: DbSession, ctx: Ctx) -> Response:
    """Remove the avatar (``DELETE /users/me/avatar``)."""
    on_error(request, "account/profile.html", **await _profile_context(browser, db, ctx))
    await ProfileService(db, ctx).delete_avatar(browser.principal)
    return redirect(request, "/account?done=avatar_removed")


# --- preferences ------------------------------------------------------------------------


@router.get("/preferences")
async def preferences_page(
    request: Request,
    browser: SignedIn,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Theme, accessibility and language, applied to these pages."""
    return render(
        request,
        "account/preferences.html",
        {
            "section": "preferences",
            "prefs": browser.preferences,
            "font_steps": FONT_STEPS,
            "notice": _notice(done),
        },
    )


@router.post("/preferences", dependencies=[CsrfProtected])
async def save_preferences(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    theme: Annotated[str, Form(max_length=16)] = "system",
    language: Annotated[str, Form(max_length=16)] = "",
    font_scale: Annotated[int, Form(ge=50, le=300)] = 100,
    reduced_motion: Annotated[str, Form(max_length=8)] = "",
    high_contrast: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Save the preferences (``PATCH /users/me/preferences``)."""
    on_error(
        request,
        "account/preferences.html",
        section="preferences",
        prefs=browser.preferences,
        font_steps=FONT_STEPS,
        notice=None,
    )
    patch = {
        "theme": theme,
        "language": language if language in LANGUAGES else None,
        "accessibility": {
            "font_scale": font_scale / 100,
            "reduced_motion": reduced_motion == "on",
            "high_contrast": high_contrast == "on",
        },
    }
    await ProfileService(db, ctx).patch_preferences(browser.principal, patch)
    return redirect(request, "/account/preferences?done=preferences_saved")


# --- email and password -----------------------------------------------------------------


@router.get("/email")
async def email_page(
    request: Request,
    browser: SignedIn,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Change the email address; resend the verification email."""
    return render(request, "account/email.html", {"section": "email", "notice": _notice(done)})


@router.post("/email", dependencies=[CsrfProtected])
async def change_email(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    new_email: Annotated[str, Form(max_length=320)] = "",
    password: Password = "",
) -> Response:
    """Send a confirmation link to the new address (``POST /users/me/email``)."""
    on_error(request, "account/email.html", section="email", notice=None, new_email=new_email)
    await AccountEmailService(db, ctx).request_email_change(
        browser.principal.user_id, new_email, password
    )
    return redirect(request, "/account/email?done=email_change_sent")


@router.post("/email/resend-verification", dependencies=[CsrfProtected])
async def resend_verification(
    request: Request, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Send the verification email again (rate-limited per account)."""
    on_error(request, "account/email.html", section="email", notice=None)
    await AccountEmailService(db, ctx).resend_verification(browser.principal.user_id)
    return redirect(request, "/account/email?done=verification_sent")


@router.get("/password")
async def password_page(
    request: Request,
    browser: SignedIn,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Change the password."""
    return render(
        request, "account/password.html", {"section": "password", "notice": _notice(done)}
    )


@router.post("/password", dependencies=[CsrfProtected])
async def change_password(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    current_password: Password = "",
    new_password: Password = "",
    new_password_confirm: Password = "",
) -> Response:
    """Set a new password; every other session ends and this one gets a new cookie."""
    on_error(request, "account/password.html", section="password", notice=None)
    if new_password != new_password_confirm:
        raise PasswordsDiffer()
    await AccountService(db, ctx).change_password(browser.principal, current_password, new_password)
    response = redirect(request, "/account/password?done=password_changed")
    await rotate_session_token(request, response, db, ctx, browser)
    return response


# --- sessions and security events -------------------------------------------------------


@router.get("/sessions")
async def sessions_page(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Signed-in sessions and devices (``GET /users/me/sessions``)."""
    sessions = await AccountService(db, ctx).list_sessions(browser.principal)
    return render(
        request,
        "account/sessions.html",
        {"section": "sessions", "sessions": sessions, "notice": _notice(done)},
    )


@router.post("/sessions/{session_id}/revoke", dependencies=[CsrfProtected])
async def revoke_session(
    request: Request, session_id: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke one session (``DELETE /users/me/sessions/{id}``); revoking this browser's own
    session signs it out."""
    try:
        sid = uuid.UUID(session_id)
    except ValueError as exc:
        raise SessionNotFound("No such session.") from exc
    await AccountService(db, ctx).revoke_session(browser.principal, sid)
    if sid == browser.session.id:
        response = redirect(request, "/login?done=session_ended")
        clear_session_cookie(request, response)
        return response
    return redirect(request, "/account/sessions?done=session_revoked")


@router.get("/security")
async def security_page(request: Request, browser: SignedIn, db: DbSession) -> Response:
    """The account's latest security events (``GET /users/me/security-events``)."""
    filters = AuditFilter(target_type="user", target_id=str(browser.user_id))
    rows = await AuditRepository(db).list_events(filters, limit=50, after=None)
    return render(request, "account/security.html", {"section": "security", "events": rows[:50]})


# --- deletion ---------------------------------------------------------------------------


@router.get("/delete")
async def delete_page(request: Request, browser: SignedIn) -> Response:
    """Delete the account (asks for the password)."""
    return render(request, "account/delete.html", {"section": "delete"})


@router.post("/delete", dependencies=[CsrfProtected])
async def delete_account(
    request: Request, browser: SignedIn, db: DbSession, ctx: Ctx, password: Password = ""
) -> Response:
    """Delete the account for good (``DELETE /users/me``)."""
    on_error(request, "account/delete.html", section="delete")
    await AccountService(db, ctx).delete_account(browser.principal, password)
    response = redirect(request, "/login?done=account_deleted")
    clear_session_cookie(request, response)
    return response
