"""Stripe, through the official ``stripe`` library (async, over httpx).

Every call carries an idempotency key derived from our own ids (``atrium-purchase-<id>``,
``atrium-refund-<id>``), so a retried call — ours or the library's network retries —
never creates a second PaymentIntent or refund (https://docs.stripe.com/api/idempotent_requests).
Stripe's errors become the application's: a card declined is 402 ``payment_failed``;
anything else (unreachable, rate limited, Stripe's 5xx, a request Stripe refuses) is 503
``payments_unavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe
import structlog

from atrium.apps.raffles.exceptions import PaymentFailed, PaymentsUnavailable
from atrium.apps.raffles.settings import RafflesSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str
    status: str


class _HTTPXClient(stripe.HTTPXClient):
    """Stripe's httpx client, handing the encoded form to httpx as ``content=``: stripe
    passes it as ``data=``, which httpx deprecates for raw bytes (a DeprecationWarning
    per call)."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]


class StripeGateway:
    """The Stripe calls of purchases and refunds (one client per process and settings)."""

    def __init__(self, settings: RafflesSettings) -> None:
        key = settings.stripe_secret_key.get_secret_value()
        if not key:
            raise PaymentsUnavailable(
                "Stripe is not configured (ATRIUM_RAFFLES__STRIPE_SECRET_KEY)."
            )
        self.client = stripe.StripeClient(
            key,
            base_addresses={"api": settings.stripe_api_base},
            http_client=_HTTPXClient(timeout=settings.stripe_timeout_seconds),
            max_network_retries=2,
        )

    async def create_intent(
        self, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> Intent:
        """A PaymentIntent of ``amount`` minor units.

        Raises:
            PaymentFailed: 402, Stripe refused the payment. PaymentsUnavailable: 503.
        """
        try:
            intent = await self.client.v1.payment_intents.create_async(
                {
                    "amount": amount,
                    "currency": currency.lower(),
                    "metadata": metadata,
                    "automatic_payment_methods": {"enabled": True},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            raise PaymentFailed(exc.user_message or "The payment was refused.") from exc
        except stripe.StripeError as exc:
            log.warning(
                "stripe_error",
                call="payment_intents.create",
                error=type(exc).__name__,
                code=exc.code,
            )
            raise PaymentsUnavailable("The payment provider could not be reached.") from exc
        return Intent(id=intent.id, client_secret=intent.client_secret or "", status=intent.status)

    async def cancel_intent(self, intent_id: str) -> bool:
        """Cancel a PaymentIntent that was not paid; False when Stripe refuses (already
        succeeded or canceled) or cannot be reached (a later payment is refunded then)."""
        try:
            await self.client.v1.payment_intents.cancel_async(
                intent_id, {}, {"idempotency_key": f"atrium-cancel-{intent_id}"}
            )
        except stripe.StripeError as exc:
            log.info(
                "stripe_cancel_refused", intent=intent_id, error=type(exc).__name__, code=exc.code
            )
            return False
        return True

    async def refund(self, intent_id: str, idempotency_key: str) -> dict[str, Any]:
        """Refund a PaymentIntent's charge in full; the Refund object (``id``, ``status``,
        ``amount``).

        Raises:
            PaymentsUnavailable: 503, Stripe cannot be reached or refuses.
        """
        try:
            refund = await self.client.v1.refunds.create_async(
                {"payment_intent": intent_id}, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            log.warning(
                "stripe_error", call="refunds.create", error=type(exc).__name__, code=exc.code
            )
            raise PaymentsUnavailable("The refund could not be made now.") from exc
        return {"id": refund.id, "status": refund.status, "amount": refund.amount}


_GATEWAYS: dict[tuple[str, str], StripeGateway] = {}


def gateway_for(settings: RafflesSettings) -> StripeGateway:
    """The process's gateway for these settings (its HTTP connections are reused).

    Raises:
        PaymentsUnavailable: 503, no Stripe secret key is configured.
    """
    key = (settings.stripe_api_base, settings.stripe_secret_key.get_secret_value())
    gateway = _GATEWAYS.get(key)
    if gateway is None:
        gateway = _GATEWAYS[key] = StripeGateway(settings)
    return gateway


def verify_webhook(payload: bytes, signature: str | None, settings: RafflesSettings) -> Any:
    """The event of a webhook whose ``Stripe-Signature`` is valid for the endpoint's
    secret and no older than the tolerance (Stripe's scheme, checked by the library).

    Raises:
        ValueError: the payload is not an event; stripe.SignatureVerificationError.
        PaymentsUnavailable: 503, no webhook secret is configured.
    """
    secret = settings.stripe_webhook_secret.get_secret_value()
    if not secret:  # an empty key would let anyone sign
        raise PaymentsUnavailable("Stripe webhooks are not configured.")
    return stripe.Webhook.construct_event(
        payload, signature, secret, tolerance=settings.stripe_webhook_tolerance_seconds
    )
