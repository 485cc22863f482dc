"""The admin console's roles editor and audit trail viewer."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from atrium.audit.repository import AuditFilter, AuditRepository
from atrium.audit.service import AUDIT_CURSOR
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT
from atrium.errors import NotFound, ValidationFailed
from atrium.models import AuditEvent
from atrium.rbac.permissions import PERMISSIONS
from atrium.rbac.schemas import RoleCreate, RoleUpdate
from atrium.rbac.service import RoleService
from atrium.ui.admin import ConsoleAssurance, authorize, invalid
from atrium.ui.browser import CsrfProtected, SignedIn
from atrium.ui.errors import on_error
from atrium.ui.rendering import redirect, render

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[ConsoleAssurance])


# --- roles ----------------------------------------------------------------------------------


def _role_lists(form_permissions: list[str], form_parents: list[str]) -> dict[str, list[str]]:
    return {"permissions": form_permissions, "parents": form_parents}


@router.get("/roles")
async def roles(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Every role with its own and inherited permissions."""
    authorize(browser, "roles:read")
    items = await RoleService(db, ctx).list_roles()
    return render(
        request,
        "admin/roles.html",
        {"section": "roles", "roles": items, "permissions": PERMISSIONS, "notice": done},
    )


@router.post("/roles", dependencies=[CsrfProtected])
async def create_role(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    name: Annotated[str, Form(max_length=64)] = "",
    description: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """Create a role (``POST /roles``)."""
    caller = authorize(browser, "roles:manage")
    form = await request.form()
    items = await RoleService(db, ctx).list_roles()
    on_error(
        request,
        "admin/roles.html",
        section="roles",
        roles=items,
        permissions=PERMISSIONS,
        notice=None,
    )
    try:
        body = RoleCreate.model_validate(
            {
                "name": name,
                "description": description or None,
                **_role_lists(
                    [str(p) for p in form.getlist("permissions")],
                    [str(p) for p in form.getlist("parents")],
                ),
            }
        )
    except ValidationError as exc:
        raise invalid(exc) from exc
    await RoleService(db, ctx).create(caller, body)
    return redirect(request, f"/admin/roles/{body.name}?done=created")


@router.get("/roles/{name}")
async def role_detail(
    request: Request,
    name: str,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """One role: permissions, parents (inheritance) and the effective permissions."""
    authorize(browser, "roles:read")
    service = RoleService(db, ctx)
    role = await service.get(name)
    others = [r.name for r in await service.list_roles() if r.name != name]
    return render(
        request,
        "admin/role.html",
        {
            "section": "roles",
            "role": role,
            "others": others,
            "permissions": PERMISSIONS,
            "notice": done,
        },
    )


@router.post("/roles/{name}", dependencies=[CsrfProtected])
async def update_role(
    request: Request,
    name: str,
    browser: SignedIn,
    db: DbSession,
    ctx: Ctx,
    description: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """Replace the role's permissions and parents (``PATCH /roles/{name}``); a cycle is
    refused."""
    caller = authorize(browser, "roles:manage")
    form = await request.form()
    service = RoleService(db, ctx)
    role = await service.get(name)
    others = [r.name for r in await service.list_roles() if r.name != name]
    on_error(
        request,
        "admin/role.html",
        section="roles",
        role=role,
        others=others,
        permissions=PERMISSIONS,
        notice=None,
    )
    try:
        body = RoleUpdate.model_validate(
            {
                "description": description or None,
                **_role_lists(
                    [str(p) for p in form.getlist("permissions")],
                    [str(p) for p in form.getlist("parents")],
                ),
            }
        )
    except ValidationError as exc:
        raise invalid(exc) from exc
    await service.update(caller, name, body)
    return redirect(request, f"/admin/roles/{name}?done=saved")


@router.post("/roles/{name}/delete", dependencies=[CsrfProtected])
async def delete_role(
    request: Request, name: str, browser: SignedIn, db: DbSession, ctx: Ctx
) -> Response:
    """Delete a role (``DELETE /roles/{name}``); built-in roles cannot be deleted."""
    caller = authorize(browser, "roles:manage")
    await RoleService(db, ctx).delete(caller, name)
    return redirect(request, "/admin/roles?done=deleted")


# --- audit trail ----------------------------------------------------------------------------


@router.get("/audit")
async def audit(
    request: Request,
    browser: SignedIn,
    db: DbSession,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """The audit trail, newest first, filtered like ``GET /admin/audit-events``."""
    authorize(browser, "audit:read")
    try:
        actor = uuid.UUID(actor_id) if actor_id else None
    except ValueError as exc:
        raise ValidationFailed("The actor id is not a UUID.") from exc
    after = None
    if cursor:
        position = AUDIT_CURSOR.decode(cursor)
        after = (position["t"], position["id"])
    filters = AuditFilter(actor_id=actor, target_id=target_id or None, action=action or None)
    limit = DEFAULT_LIMIT
    rows = await AuditRepository(db).list_events(filters, limit=limit, after=after)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = AUDIT_CURSOR.encode({"t": last.occurred_at, "id": last.id})
    return render(
        request,
        "admin/audit.html",
        {
            "section": "audit",
            "events": rows[:limit],
            "next_cursor": next_cursor,
            "actor_id": actor_id or "",
            "target_id": target_id or "",
            "action": action or "",
        },
    )


@router.get("/audit/{event_id}")
async def audit_event(
    request: Request, event_id: uuid.UUID, browser: SignedIn, db: DbSession
) -> Response:
    """One audit event with its redacted before/after."""
    authorize(browser, "audit:read")
    event = await db.get(AuditEvent, event_id)
    if event is None:
        raise NotFound("No such audit event.")
    return render(
        request,
        "admin/audit_event.html",
        {
            "section": "audit",
            "event": event,
            "changes_json": json.dumps(event.changes, indent=2, sort_keys=True, default=str),
            "details_json": json.dumps(event.details, indent=2, sort_keys=True, default=str),
        },
    )
