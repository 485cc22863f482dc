"""HTTP routes of the caller's linked identities: /api/v1/users/me/identities*."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response, status
from fastapi.responses import JSONResponse

from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.stepup import StepUp, StepUpRequired
from atrium.context import Ctx
from atrium.core.cookies import set_cookie
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.social.exceptions import (
    IdentityNotFound,
    InvalidRedirect,
    LastLoginMethod,
    ProviderNotFound,
    ProviderUnavailable,
)
from atrium.social.flow import STATE_TTL_SECONDS
from atrium.social.providers import get_provider
from atrium.social.schemas import IdentityList, IdentityRead, LinkStart, LinkStartRequest
from atrium.social.service import BINDING_COOKIE, SocialService, binding_of

router = APIRouter(prefix="/users/me/identities", tags=["users: identities"])

_AUTH = (NotAuthenticated, InvalidToken)
ProviderPath = Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


@router.get("", response_model=IdentityList, responses=problem_responses(*_AUTH, ValidationFailed))
async def list_identities(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> IdentityList:
    """The external identities linked to the caller's account."""
    items, has_password = await SocialService(db, ctx).identities(principal.user_id)
    return IdentityList(
        items=[IdentityRead.model_validate(i, from_attributes=True) for i in items],
        has_password=has_password,
    )


@router.post(
    "/{provider}",
    response_model=LinkStart,
    responses=problem_responses(
        *_AUTH,
        StepUpRequired,
        ProviderNotFound,
        InvalidRedirect,
        ValidationFailed,
        ProviderUnavailable,
    ),
)
async def link_identity(
    request: Request,
    provider: ProviderPath,
    principal: StepUp,
    db: DbSession,
    ctx: Ctx,
    body: Annotated[LinkStartRequest | None, Body()] = None,
) -> JSONResponse:
    """Start linking a provider (recent authentication required): open `authorization_url`
    in this browser (binding cookie set by this response)."""
    found = await get_provider(db, ctx.settings, provider)
    binding = binding_of(request)
    url = await SocialService(db, ctx).begin(
        found,
        body.redirect_to if body else None,
        None,
        link_user_id=principal.user_id,
        binding=binding,
    )
    response = JSONResponse(LinkStart(authorization_url=url).model_dump())
    set_cookie(request, response, BINDING_COOKIE, binding, STATE_TTL_SECONDS)
    return response


@router.delete(
    "/{identity_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        *_AUTH, StepUpRequired, IdentityNotFound, LastLoginMethod, ValidationFailed
    ),
)
async def unlink_identity(
    identity_id: uuid.UUID, principal: StepUp, db: DbSession, ctx: Ctx
) -> Response:
    """Remove a linked identity (recent authentication required); refused when it is the
    account's last way to sign in."""
    await SocialService(db, ctx).unlink(principal.user_id, identity_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
