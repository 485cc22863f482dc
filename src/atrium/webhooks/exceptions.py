"""Errors of the webhook domain."""

from __future__ import annotations

from atrium.core.ssrf import UrlRefused
from atrium.errors import AppError, Conflict, NotFound


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    title = "No such webhook endpoint"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "No such webhook delivery"


class WebhookUrlRefused(UrlRefused):
    """The URL is not http(s), or names a host Atrium refuses to call (private, loopback,
    link-local or metadata addresses, unless ``webhooks.allow_*`` says otherwise)."""

    code = "webhook_url_refused"
    title = "Webhook URL refused"


class UnknownEventType(AppError):
    """An event type is neither a catalogue name nor a pattern matching one."""

    status = 422
    code = "unknown_event_type"
    title = "Unknown event type"


class WebhookLimitReached(Conflict):
    code = "webhook_limit_reached"
    title = "Too many webhook endpoints"


class DeliveryInProgress(Conflict):
    code = "webhook_delivery_in_progress"
    title = "The delivery is pending or being attempted"
