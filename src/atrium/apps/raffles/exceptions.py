"""Errors of the raffles application, each with a status and a stable ``code``."""

from __future__ import annotations

from atrium.errors import AppError, Conflict, NotFound, ServiceUnavailable


class RaffleNotFound(NotFound):
    code = "raffle_not_found"
    title = "Raffle not found"


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"
    title = "Purchase not found"


class RaffleNotEditable(Conflict):
    """A field that buyers rely on is changed after the raffle opened, or any field of a
    closed, drawn or cancelled raffle."""

    code = "raffle_not_editable"
    title = "The raffle can no longer be changed this way"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "The raffle is not in a state that allows this"


class InvalidSchedule(AppError):
    status = 422
    code = "invalid_schedule"
    title = "opens_at must come before closes_at, and closes_at must be in the future"


class InvalidImage(AppError):
    status = 422
    code = "invalid_image"
    title = "An image is not an uploaded image file"


class RaffleNotOpen(Conflict):
    code = "raffle_not_open"
    title = "The raffle is not open for purchases"


class TicketsUnavailable(Conflict):
    code = "tickets_unavailable"
    title = "Not enough tickets are left"


class AccountLimitReached(Conflict):
    code = "account_limit_reached"
    title = "The purchase would exceed the tickets one account may hold"


class IdempotencyKeyRequired(AppError):
    status = 400
    code = "idempotency_key_required"
    title = "An Idempotency-Key header (1 to 255 visible ASCII characters) is required"


class IdempotencyKeyReused(AppError):
    status = 422
    code = "idempotency_key_reused"
    title = "The Idempotency-Key was used for a different request"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"


class PaymentsUnavailable(ServiceUnavailable):
    code = "payments_unavailable"
    title = "Payments are not configured or the payment provider is unreachable"


class PaymentFailed(AppError):
    status = 402
    code = "payment_failed"
    title = "The payment provider refused the payment"


class InvalidWebhook(AppError):
    status = 400
    code = "invalid_webhook"
    title = "The webhook's signature, timestamp or payload is not valid"


class BeaconUnavailable(ServiceUnavailable):
    code = "beacon_unavailable"
    title = "The randomness beacon round is not available yet"


class RefundRefused(Conflict):
    code = "refund_refused"
    title = "The purchase is not paid, or is already refunded"


class QuantityTooLarge(AppError):
    status = 422
    code = "quantity_too_large"
    title = "More tickets than one purchase may ask for"
