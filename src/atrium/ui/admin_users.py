"""The admin console's users: list, bulk actions, one account and its actions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.admin.repository import UserFilter
from atrium.admin.schemas import AccountStatus, AdminUserUpdate, BulkRequest, UserSort
from atrium.admin.service import AdminService
from atrium.audit.repository import AuditFilter, AuditRepository
from atrium.audit.schemas import AuditEventRead
from atrium.auth.assurance import has_second_factor
from atrium.auth.repository import SessionRepository
from atrium.auth.stepup import StepUpRequired, require_aal2, require_step_up
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from atrium.errors import NotFound
from atrium.mfa.factors import FactorService
from atrium.mfa.repository import MfaRepository
from atrium.models import User
from atrium.rbac.resolver import permission_resolver
from atrium.rbac.service import RoleService, managed_account
from atrium.ui.admin import ConsoleAssurance, authorize, invalid
from atrium.ui.browser import Browser, CsrfProtected, SignedIn
from atrium.ui.errors import on_error
from atrium.ui.rendering import redirect, render
from atrium.users.schemas import SessionRead
from atrium.verification.service import AccountEmailService

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[ConsoleAssurance])


# --- users ----------------------------------------------------------------------------------


@router.get("/users")
async def users(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    q: Annotated[str | None, Query(max_length=100)] = None,
    role: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    email_verified: Annotated[str | None, Query(max_length=8)] = None,
    sort: Annotated[str, Query(max_length=16)] = UserSort.created_at_desc.value,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Search, filter and sort accounts, a keyset page at a time (``GET /admin/users``).
    An htmx request gets the results table alone."""
    authorize(browser, "users:read")
    sort_key = UserSort(sort) if sort in {s.value for s in UserSort} else UserSort.created_at_desc
    status_value = status if status in {s.value for s in AccountStatus} else None
    verified = {"yes": True, "no": False}.get(email_verified or "")
    filters = UserFilter(q=(q or "").strip() or None, status=status_value, email_verified=verified)
    page = await AdminService(db, ctx).list_users(
        filters, sort_key, limit, cursor or None, role or None
    )
    graph = await permission_resolver(ctx).graph()
    context = {
        "section": "users",
        "page": page,
        "q": q or "",
        "role": role or "",
        "status": status_value or "",
        "email_verified": email_verified or "",
        "sort": sort_key.value,
        "limit": limit,
        "sorts": [s.value for s in UserSort],
        "role_names": sorted(graph.roles),
        "notice": done,
    }
    partial = request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )
    return render(request, "admin/users_table.html" if partial else "admin/users.html", context)


@router.post("/users/bulk", dependencies=[CsrfProtected])
async def bulk(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    action: Annotated[str, Form(max_length=16)] = "",
    role: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """One action on the selected accounts, all or nothing (``POST /admin/users/bulk``)."""
    form = await request.form()
    ids = [str(v) for v in form.getlist("ids")][:1000]
    caller = authorize(browser)
    try:
        body = BulkRequest.model_validate({"ids": ids, "action": action, "role": role or None})
    except ValidationError as exc:
        raise invalid(exc) from exc
    await AdminService(db, ctx).bulk(caller, body)
    return redirect(request, "/admin/users?done=bulk")


async def _user_context(db: DbSession, ctx: Ctx, user_id: uuid.UUID) -> dict[str, Any]:
    user = await AdminService(db, ctx).get_user(user_id)
    factors = await MfaRepository(db).factors_of(user_id)
    now = ctx.clock.now()
    sessions = await SessionRepository(db).list_active_sessions(user_id, now)
    filters = AuditFilter(target_type="user", target_id=str(user_id))
    events = await AuditRepository(db).list_events(filters, limit=20, after=None)
    graph = await permission_resolver(ctx).graph()
    # Plain copies: when the page's action fails, the rollback expires ORM rows, and the
    # page is rendered again from this context.
    return {
        "section": "users",
        "user": user,
        "sessions": [SessionRead.of(s, current=False) for s in sessions],
        "events": [AuditEventRead.model_validate(e) for e in events[:20]],
        "grantable": [r for r in sorted(graph.roles) if r not in user.roles],
        "mfa_factors": sum(1 for f in factors if f.verified_at is not None),
    }


@router.get("/users/{user_id}")
async def user_detail(
    request: Request,
    user_id: uuid.UUID,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """One account: profile, roles, status, sessions, its audit events."""
    authorize(browser, "users:read")
    context = await _user_context(db, ctx, user_id)
    return render(request, "admin/user.html", {**context, "notice": done})


async def _on_user_error(request: Request, db: DbSession, ctx: Ctx, user_id: uuid.UUID) -> None:
    on_error(request, "admin/user.html", **await _user_context(db, ctx, user_id), notice=None)


@router.post("/users/{user_id}/status", dependencies=[CsrfProtected])
async def set_status(
    request: Request,
    user_id: uuid.UUID,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    status: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Suspend or activate (``PATCH /admin/users/{id}``)."""
    caller = authorize(browser, "users:write")
    await _on_user_error(request, db, ctx, user_id)
    try:
        body = AdminUserUpdate.model_validate({"status": status})
    except ValidationError as exc:
        raise invalid(exc) from exc
    await AdminService(db, ctx).update_user(caller, user_id, body)
    return redirect(request, f"/admin/users/{user_id}?done={body.status}")


@router.post("/users/{user_id}/roles", dependencies=[CsrfProtected])
async def grant_role(
    request: Request,
    user_id: uuid.UUID,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    role: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Grant a role (``PUT /users/{id}/roles/{name}``)."""
    caller = authorize(browser, "roles:assign")
    await _on_user_error(request, db, ctx, user_id)
    await RoleService(db, ctx).grant(caller, user_id, role)
    return redirect(request, f"/admin/users/{user_id}?done=role_granted")


@router.post("/users/{user_id}/roles/{role}/revoke", dependencies=[CsrfProtected])
async def revoke_role(
    request: Request, user_id: uuid.UUID, role: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Revoke a role (``DELETE /users/{id}/roles/{name}``)."""
    caller = authorize(browser, "roles:assign")
    await _on_user_error(request, db, ctx, user_id)
    await RoleService(db, ctx).revoke(caller, user_id, role)
    return redirect(request, f"/admin/users/{user_id}?done=role_revoked")


@router.post("/users/{user_id}/sessions/revoke", dependencies=[CsrfProtected])
async def revoke_sessions(
    request: Request, user_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """End every session of the account (``POST /admin/users/{id}/sessions/revoke``)."""
    caller = authorize(browser, "sessions:revoke")
    await _on_user_error(request, db, ctx, user_id)
    await AdminService(db, ctx).revoke_sessions(caller, user_id)
    return redirect(request, f"/admin/users/{user_id}?done=sessions_revoked")


@router.post("/users/{user_id}/delete", dependencies=[CsrfProtected])
async def delete_user(
    request: Request, user_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Soft-delete (``DELETE /admin/users/{id}``)."""
    caller = authorize(browser, "users:delete")
    await _on_user_error(request, db, ctx, user_id)
    await AdminService(db, ctx).delete_user(caller, user_id)
    return redirect(request, f"/admin/users/{user_id}?done=deleted")


@router.post("/users/{user_id}/restore", dependencies=[CsrfProtected])
async def restore_user(
    request: Request, user_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Restore a soft-deleted account (``POST /admin/users/{id}/restore``)."""
    caller = authorize(browser, "users:delete")
    await _on_user_error(request, db, ctx, user_id)
    await AdminService(db, ctx).restore_user(caller, user_id)
    return redirect(request, f"/admin/users/{user_id}?done=restored")


@router.post("/users/{user_id}/resend-verification", dependencies=[CsrfProtected])
async def resend_verification(
    request: Request, user_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Send the account's verification email again."""
    authorize(browser, "users:write")
    await _on_user_error(request, db, ctx, user_id)
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    await AccountEmailService(db, ctx).send_verification(user)
    return redirect(request, f"/admin/users/{user_id}?done=verification_sent")


# --- MFA reset -------------------------------------------------------------------------------


async def _mfa_reset_gate(
    request: Request, browser: Browser, ctx: Ctx, user_id: uuid.UUID
) -> Response | bool:
    """The API's rule for ``DELETE /admin/users/{id}/mfa`` (:func:`require_aal2`: a recent
    authentication at aal2). True when the session passes; a redirect to the
    re-authentication page (which returns here) when a step-up would make it pass; False
    when it cannot (the administrator's own account has no second factor, so it never
    reaches aal2). Called before the page's unit of work (the rule reads in a session of
    its own)."""
    try:
        await require_aal2(await require_step_up(browser.principal, ctx), ctx)
    except StepUpRequired:
        async with ctx.sessionmaker() as db:
            if not await has_second_factor(db, browser.user_id):
                return False
        back = f"/admin/users/{user_id}/mfa/reset"
        return redirect(request, "/account/reauth?next=" + quote(back, safe=""))
    return True


@router.get("/users/{user_id}/mfa/reset")
async def mfa_reset_page(
    request: Request, user_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Confirm the removal of every second factor of an account (a lost authenticator);
    needs ``users:mfa_reset`` and, as the API, a recent aal2 authentication."""
    authorize(browser, "users:mfa_reset")
    gate = await _mfa_reset_gate(request, browser, ctx, user_id)
    if isinstance(gate, Response):
        return gate
    context = await _user_context(db, ctx, user_id)
    return render(request, "admin/user_mfa_reset.html", {**context, "can_reset": gate})


@router.post("/users/{user_id}/mfa/reset", dependencies=[CsrfProtected])
async def mfa_reset(
    request: Request, user_id: uuid.UUID, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Remove every factor, recovery code and trusted device of the account
    (``DELETE /admin/users/{id}/mfa``: audited as ``admin.mfa_reset``, the owner is
    emailed)."""
    caller = authorize(browser, "users:mfa_reset")
    gate = await _mfa_reset_gate(request, browser, ctx, user_id)
    if isinstance(gate, Response):
        return gate
    on_error(
        request,
        "admin/user_mfa_reset.html",
        **await _user_context(db, ctx, user_id),
        can_reset=gate,
    )
    if not gate:
        raise StepUpRequired(ctx.settings.auth.step_up_max_age_seconds, "aal2")
    await managed_account(db, caller, user_id, await permission_resolver(ctx).graph())
    await FactorService(db, ctx).reset(caller.user_id, user_id)
    return redirect(request, f"/admin/users/{user_id}?done=mfa_reset")
