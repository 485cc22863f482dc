"""The raffles application's domain events and the notices they become (through the
platform's events and notifications: in-app, and by email as the account's preferences
say, category ``account``)."""

from __future__ import annotations

from atrium.events.catalogue import UUID, EventType
from atrium.notifications.notices import Notice

_TITLE = {"type": "string", "maxLength": 200}
_INT = {"type": "integer", "minimum": 0}

EVENT_TYPES = [
    EventType(
        name="raffles.ticket_won",
        subject="raffle",
        description="A ticket won a raffle's draw; the notice goes to its owner.",
        properties={
            "user_id": UUID,
            "raffle_id": UUID,
            "title": _TITLE,
            "number": _INT,
            "prize": {"type": "string", "maxLength": 2000},
        },
        required=("user_id", "raffle_id", "title", "number", "prize"),
    ),
    EventType(
        name="raffles.purchase_refunding",
        subject="raffle",
        description="A cancelled raffle's paid purchase is being refunded (notice: its buyer).",
        properties={
            "user_id": UUID,
            "raffle_id": UUID,
            "title": _TITLE,
            "amount": _INT,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
        required=("user_id", "raffle_id", "title", "amount", "currency"),
    ),
]

NOTICES = {
    "raffles.ticket_won": Notice(
        "account",
        "You won: {title}",
        "Your ticket {number} won. Prize: {prize}. The draw record is public and verifiable.",
        link=None,
        email="notification",
    ),
    "raffles.purchase_refunding": Notice(
        "account",
        "{title} was cancelled",
        "Your payment of {amount} {currency} (minor units) is being refunded to your card.",
        link=None,
        email="notification",
    ),
}
