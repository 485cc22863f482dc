"""HTTP routes of purchases: buying tickets, an account's purchases and tickets, Stripe's
webhook (public: authenticated by its signature) and refunds by hand."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import stripe
from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from atrium.apps.raffles.dependencies import PaymentsRefund
from atrium.apps.raffles.exceptions import (
    AccountLimitReached,
    IdempotencyKeyInUse,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidWebhook,
    PaymentFailed,
    PaymentsUnavailable,
    PurchaseNotFound,
    QuantityTooLarge,
    RaffleNotFound,
    RaffleNotOpen,
    RefundRefused,
    TicketsUnavailable,
)
from atrium.apps.raffles.payments import verify_webhook
from atrium.apps.raffles.purchases import PurchaseService
from atrium.apps.raffles.refunds import refund_by_hand
from atrium.apps.raffles.schemas import PurchaseCreate, PurchaseCreated, PurchaseRead, TicketRead
from atrium.apps.raffles.settings import RafflesSettings
from atrium.apps.raffles.settlement import Settlement
from atrium.auth.dependencies import CurrentPrincipal, VerifiedUser
from atrium.context import Ctx
from atrium.core.apps import app_settings
from atrium.core.db import DbSession
from atrium.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from atrium.errors import (
    PROBLEM_JSON,
    InvalidToken,
    NotAuthenticated,
    ValidationFailed,
    problem_responses,
)
from atrium.rbac.exceptions import PermissionDenied
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(tags=["raffles: purchases"])
_AUTH = (NotAuthenticated, InvalidToken)
_KEY = r"^[\x21-\x7e]{1,255}$"


class WebhookReceived(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"received": True, "outcome": "issued"}]}
    )

    received: bool
    outcome: str


@router.post(
    "/raffles/{raffle_id}/purchases",
    status_code=status.HTTP_201_CREATED,
    response_model=PurchaseCreated,
    responses=problem_responses(
        *_AUTH,
        EmailNotVerified,
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        IdempotencyKeyInUse,
        QuantityTooLarge,
        RaffleNotFound,
        RaffleNotOpen,
        TicketsUnavailable,
        AccountLimitReached,
        PaymentFailed,
        PaymentsUnavailable,
        ValidationFailed,
    ),
)
async def buy_tickets(
    raffle_id: uuid.UUID,
    body: PurchaseCreate,
    principal: VerifiedUser,
    ctx: Ctx,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required: 1-255 visible ASCII characters; same key, same answer.",
        ),
    ] = None,
) -> JSONResponse:
    """Reserve tickets and start their payment (a Stripe PaymentIntent's client secret)."""
    if idempotency_key is None or not _visible_ascii(idempotency_key):
        raise IdempotencyKeyRequired()
    answer = await PurchaseService(ctx).purchase(
        principal.user_id, raffle_id, body.quantity, idempotency_key
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    media = PROBLEM_JSON if answer.status >= 400 else "application/json"
    return JSONResponse(answer.body, status_code=answer.status, headers=headers, media_type=media)


def _visible_ascii(value: str) -> bool:
    return 1 <= len(value) <= 255 and all(0x21 <= ord(c) <= 0x7E for c in value)


@router.get(
    "/users/me/purchases",
    response_model=Page[PurchaseRead],
    responses=problem_responses(*_AUTH, InvalidCursor, ValidationFailed),
)
async def my_purchases(
    principal: CurrentPrincipal,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Page[PurchaseRead]:
    """The caller's ticket purchases, newest first, with their ticket numbers."""
    return await PurchaseService(ctx).purchases_of(principal.user_id, limit, cursor)


@router.get(
    "/users/me/tickets",
    response_model=Page[TicketRead],
    responses=problem_responses(*_AUTH, InvalidCursor, ValidationFailed),
)
async def my_tickets(
    principal: CurrentPrincipal,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Page[TicketRead]:
    """The caller's tickets, newest first."""
    return await PurchaseService(ctx).tickets_of(principal.user_id, limit, cursor)


_EVENT_EXAMPLE: dict[str, Any] = {
    "id": "evt_1",
    "object": "event",
    "type": "payment_intent.succeeded",
    "data": {
        "object": {"id": "pi_1", "object": "payment_intent", "amount": 1000, "currency": "eur"}
    },
}


@router.post(
    "/payments/stripe/webhook",
    response_model=WebhookReceived,
    responses=problem_responses(InvalidWebhook, PaymentsUnavailable),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}, "example": _EVENT_EXAMPLE}
            },
        }
    },
)
async def stripe_webhook(  # public: authenticated by the Stripe-Signature header
    request: Request,
    ctx: Ctx,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceived:
    """Stripe's events (signed with the endpoint's secret); each is processed once."""
    settings = app_settings(ctx.apps, "raffles", RafflesSettings)
    payload = await request.body()
    try:
        event = verify_webhook(payload, stripe_signature, settings)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidWebhook() from exc
    outcome = await Settlement(ctx.sessionmaker, ctx.clock, settings).handle(event.to_dict())
    return WebhookReceived(received=True, outcome=outcome)


@router.post(
    "/admin/raffles/purchases/{purchase_id}/refund",
    response_model=PurchaseRead,
    responses=problem_responses(*_AUTH, PermissionDenied, PurchaseNotFound, RefundRefused),
)
async def refund_purchase(
    purchase_id: uuid.UUID, caller: PaymentsRefund, db: DbSession, ctx: Ctx
) -> PurchaseRead:
    """Refund a paid purchase (the worker asks Stripe; its tickets stay in the draw)."""
    return await refund_by_hand(db, ctx.clock.now(), caller, purchase_id)
