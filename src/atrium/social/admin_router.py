"""HTTP routes of identity-provider administration: /api/v1/admin/identity-providers*."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.exceptions import PermissionDenied
from atrium.social.admin_service import ProviderAdminService
from atrium.social.dependencies import ProvidersManage
from atrium.social.exceptions import (
    InvalidProviderConfig,
    ProviderExists,
    ProviderNotFound,
    ProviderReadOnly,
    SecretKeyMissing,
)
from atrium.social.schemas import ProviderCreate, ProviderRead, ProviderUpdate

router = APIRouter(prefix="/admin/identity-providers", tags=["admin: identity providers"])

_AUTH = (NotAuthenticated, InvalidToken, PermissionDenied)
ProviderPath = Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


@router.get(
    "", response_model=list[ProviderRead], responses=problem_responses(*_AUTH, ValidationFailed)
)
async def list_providers(_: ProvidersManage, db: DbSession, ctx: Ctx) -> list[ProviderRead]:
    """Every identity provider: of the settings, then stored ones."""
    return await ProviderAdminService(db, ctx).list_all()


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProviderRead,
    responses=problem_responses(
        *_AUTH, ProviderExists, InvalidProviderConfig, SecretKeyMissing, ValidationFailed
    ),
)
async def create_provider(
    body: ProviderCreate, caller: ProvidersManage, db: DbSession, ctx: Ctx
) -> ProviderRead:
    """Add an identity provider; the client secret is stored encrypted and never shown."""
    return await ProviderAdminService(db, ctx).create(caller, body)


@router.get(
    "/{provider_id}",
    response_model=ProviderRead,
    responses=problem_responses(*_AUTH, ProviderNotFound, ValidationFailed),
)
async def get_provider(
    provider_id: ProviderPath, _: ProvidersManage, db: DbSession, ctx: Ctx
) -> ProviderRead:
    """One identity provider."""
    return await ProviderAdminService(db, ctx).get(provider_id)


@router.patch(
    "/{provider_id}",
    response_model=ProviderRead,
    responses=problem_responses(
        *_AUTH,
        ProviderNotFound,
        ProviderReadOnly,
        InvalidProviderConfig,
        SecretKeyMissing,
        ValidationFailed,
    ),
)
async def update_provider(
    provider_id: ProviderPath,
    body: ProviderUpdate,
    caller: ProvidersManage,
    db: DbSession,
    ctx: Ctx,
) -> ProviderRead:
    """Change a stored identity provider (those of the settings change with them)."""
    changes = body.model_dump(exclude_unset=True)
    return await ProviderAdminService(db, ctx).update(caller, provider_id, changes)


@router.delete(
    "/{provider_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, ProviderNotFound, ProviderReadOnly, ValidationFailed),
)
async def delete_provider(
    provider_id: ProviderPath, caller: ProvidersManage, db: DbSession, ctx: Ctx
) -> Response:
    """Remove a stored identity provider; linked identities stay."""
    await ProviderAdminService(db, ctx).delete(caller, provider_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
