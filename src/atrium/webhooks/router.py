"""HTTP routes of webhook administration: /api/v1/admin/webhooks* (permission
`webhooks:manage`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.params import UtcDatetime
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.rbac.dependencies import Authorized, require
from atrium.rbac.exceptions import PermissionDenied
from atrium.social.exceptions import SecretKeyMissing
from atrium.webhooks.exceptions import (
    DeliveryInProgress,
    UnknownEventType,
    WebhookDeliveryNotFound,
    WebhookLimitReached,
    WebhookNotFound,
    WebhookUrlRefused,
)
from atrium.webhooks.schemas import (
    DeliveryRead,
    TestResult,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from atrium.webhooks.service import WebhookService

router = APIRouter(prefix="/admin/webhooks", tags=["admin: webhooks"])

Manager = Annotated[Authorized, require("webhooks:manage")]
_AUTH = (NotAuthenticated, InvalidToken, PermissionDenied, ValidationFailed)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookWithSecret,
    responses=problem_responses(
        *_AUTH, WebhookUrlRefused, UnknownEventType, WebhookLimitReached, SecretKeyMissing
    ),
)
async def create_webhook(
    body: WebhookCreate, caller: Manager, db: DbSession, ctx: Ctx
) -> WebhookWithSecret:
    """Add an endpoint; the answer carries its `whsec_…` signing secret, shown this once."""
    return await WebhookService(db, ctx).create(caller.user_id, body)


@router.get("", response_model=list[WebhookRead], responses=problem_responses(*_AUTH))
async def list_webhooks(_: Manager, db: DbSession, ctx: Ctx) -> list[WebhookRead]:
    """Every endpoint, oldest first; never their secrets."""
    return await WebhookService(db, ctx).list_all()


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=problem_responses(*_AUTH, WebhookNotFound),
)
async def get_webhook(webhook_id: uuid.UUID, _: Manager, db: DbSession, ctx: Ctx) -> WebhookRead:
    """One endpoint."""
    return await WebhookService(db, ctx).get(webhook_id)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=problem_responses(*_AUTH, WebhookNotFound, WebhookUrlRefused, UnknownEventType),
)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, caller: Manager, db: DbSession, ctx: Ctx
) -> WebhookRead:
    """Change an endpoint's URL, event types, description or state; audited."""
    return await WebhookService(db, ctx).update(caller.user_id, webhook_id, body)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, WebhookNotFound),
)
async def delete_webhook(
    webhook_id: uuid.UUID, caller: Manager, db: DbSession, ctx: Ctx
) -> Response:
    """Remove an endpoint with its delivery log; audited."""
    await WebhookService(db, ctx).delete(caller.user_id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=problem_responses(*_AUTH, WebhookNotFound, SecretKeyMissing),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, caller: Manager, db: DbSession, ctx: Ctx
) -> WebhookWithSecret:
    """A new signing secret, shown this once; the previous one keeps signing next to it
    for `webhooks.rotation_overlap_seconds` (both signatures in `webhook-signature`)."""
    return await WebhookService(db, ctx).rotate_secret(caller.user_id, webhook_id)


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestResult,
    responses=problem_responses(*_AUTH, WebhookNotFound),
)
async def test_webhook(
    webhook_id: uuid.UUID, caller: Manager, db: DbSession, ctx: Ctx
) -> TestResult:
    """Send a signed `webhook.test` message once (even to a disabled endpoint); its
    outcome appears in the delivery log."""
    return await WebhookService(db, ctx).test(caller.user_id, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryRead],
    responses=problem_responses(*_AUTH, WebhookNotFound),
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: Manager,
    db: DbSession,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: Annotated[
        UtcDatetime | None, Query(description="Only deliveries created before this instant.")
    ] = None,
) -> list[DeliveryRead]:
    """The delivery log, newest first: each delivery's state and every attempt (HTTP
    status, latency, the start of the answer)."""
    return await WebhookService(db, ctx).deliveries(webhook_id, limit=limit, before=before)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryRead,
    responses=problem_responses(
        *_AUTH, WebhookNotFound, WebhookDeliveryNotFound, DeliveryInProgress
    ),
)
async def retry_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, caller: Manager, db: DbSession, ctx: Ctx
) -> DeliveryRead:
    """Queue a delivered or failed delivery again, due now, with a fresh budget of
    attempts; audited."""
    return await WebhookService(db, ctx).retry(caller.user_id, webhook_id, delivery_id)
