"""Request and response models of the raffles application."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from atrium.apps.raffles.models import PurchaseStatus, RaffleStatus
from atrium.core.params import UtcDatetime

_EXAMPLE_ID = "0b9f5a5e-6d1c-4d0e-9a59-2f1f4c8e7b11"
_COMMITMENT = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
_BEACON = "drand:52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
_LEDGER = "2fa111784e0bb080b14d1c5017a61d67844f8ac1323c3ead56c99b4439ab8188"


def _currency(value: str) -> str:
    if not (len(value) == 3 and value.isascii() and value.isalpha()):
        raise ValueError("an ISO 4217 alphabetic code, three letters")
    return value.upper()


Currency = Annotated[str, AfterValidator(_currency)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^\x00]*$")]

_RAFFLE_EXAMPLE: dict[str, Any] = {
    "title": "Watch of the week",
    "description": "A Swiss automatic watch, boxed with its papers.",
    "prize_description": "One watch, shipped insured.",
    "terms": "One prize. Open to adults. Draw by drand beacon.",
    "image_file_ids": [],
    "currency": "EUR",
    "ticket_price": 500,
    "total_tickets": 1000,
    "max_per_account": 20,
    "prizes": 1,
    "opens_at": "2026-12-03T09:00:00Z",
    "closes_at": "2026-12-10T18:00:00Z",
}


class RaffleCreate(BaseModel):
    """A new raffle (created as ``draft``). Prices are ISO 4217 minor units."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_RAFFLE_EXAMPLE]})

    title: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=10_000)] = ""
    prize_description: Annotated[Text, Field(min_length=1, max_length=2_000)]
    terms: Annotated[Text, Field(max_length=20_000)] = ""
    image_file_ids: Annotated[list[uuid.UUID], Field(max_length=10)] = []
    currency: Currency
    ticket_price: Annotated[int, Field(ge=1, le=10**12)]
    total_tickets: Annotated[int, Field(ge=1, le=10_000_000)]
    max_per_account: Annotated[int, Field(ge=1, le=10_000_000)]
    prizes: Annotated[int, Field(ge=1, le=10_000)] = 1
    opens_at: UtcDatetime
    closes_at: UtcDatetime


class RaffleUpdate(BaseModel):
    """Fields to change. Price, currency, tickets, maximum per account, prizes, dates and
    terms only while ``draft`` or ``scheduled``; nothing once closed."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"title": "Watch of the month"}]}
    )

    title: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[Text, Field(max_length=10_000)] | None = None
    prize_description: Annotated[Text, Field(min_length=1, max_length=2_000)] | None = None
    terms: Annotated[Text, Field(max_length=20_000)] | None = None
    image_file_ids: Annotated[list[uuid.UUID], Field(max_length=10)] | None = None
    currency: Currency | None = None
    ticket_price: Annotated[int, Field(ge=1, le=10**12)] | None = None
    total_tickets: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    max_per_account: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    prizes: Annotated[int, Field(ge=1, le=10_000)] | None = None
    opens_at: UtcDatetime | None = None
    closes_at: UtcDatetime | None = None


class DrawRecord(BaseModel):
    """The draw as published: enough to recompute the winners (docs/apps/verify_draw.py).
    Before the draw only the commitment, beacon and round are set."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "raffle_id": _EXAMPLE_ID,
                    "status": "drawn",
                    "commitment": _COMMITMENT,
                    "seed": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                    "beacon": _BEACON,
                    "beacon_url": "https://api.drand.sh",
                    "beacon_round": 1234567,
                    "beacon_value": "ab" * 32,
                    "ledger_hash": _LEDGER,
                    "ticket_count": 10,
                    "prizes": 3,
                    "winners": [{"number": 9, "ticket_id": "00000000-0000-0000-0000-000000000009"}],
                    "drawn_at": "2026-12-10T18:00:05Z",
                }
            ]
        }
    )

    raffle_id: uuid.UUID
    status: RaffleStatus
    commitment: str | None
    seed: str | None = Field(description="Hex; published at the draw or the cancellation.")
    beacon: str | None
    beacon_url: str | None
    beacon_round: int | None
    beacon_value: str | None = Field(description="Hex bytes of the beacon round's value.")
    ledger_hash: str | None
    ticket_count: int | None
    prizes: int
    winners: list[WinningTicket] | None
    drawn_at: datetime | None


class WinningTicket(BaseModel):
    number: int
    ticket_id: uuid.UUID


class RaffleRead(BaseModel):
    """A raffle as the public sees it (``draft`` raffles are never shown)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_RAFFLE_EXAMPLE,
                    "id": _EXAMPLE_ID,
                    "status": "open",
                    "tickets_sold": 120,
                    "tickets_remaining": 875,
                    "commitment": _COMMITMENT,
                    "beacon": _BEACON,
                    "beacon_round": 1234567,
                    "draw": None,
                }
            ]
        }
    )

    id: uuid.UUID
    title: str
    description: str
    prize_description: str
    terms: str
    image_file_ids: list[uuid.UUID]
    currency: str
    ticket_price: int
    total_tickets: int
    max_per_account: int
    prizes: int
    opens_at: datetime
    closes_at: datetime
    status: RaffleStatus
    tickets_sold: int
    tickets_remaining: int = Field(description="Neither sold nor reserved by a pending purchase.")
    commitment: str | None
    beacon: str | None
    beacon_round: int | None
    draw: DrawRecord | None = Field(description="Set once the raffle is drawn or cancelled.")


class SalesFigures(BaseModel):
    tickets_sold: int
    tickets_reserved: int
    gross: int = Field(description="Paid purchases, minor units.")
    refunded: int = Field(description="Refunded, minor units.")


class RaffleAdminRead(RaffleRead):
    """A raffle with its sales figures (administrators)."""

    sales: SalesFigures
    created_at: datetime
    updated_at: datetime


class RaffleSort(enum.StrEnum):
    closes_at = "closes_at"
    created_at_desc = "-created_at"
    price = "price"
    price_desc = "-price"


class DrawLogEntryRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 1,
                    "raffle_id": _EXAMPLE_ID,
                    "kind": "commitment",
                    "at": "2026-12-02T09:00:00.000000+00:00",
                    "data": {"commitment": "630d…", "beacon_round": 1234567},
                    "prev_hash": "0" * 64,
                    "hash": "5d41…",
                }
            ]
        }
    )

    seq: int
    raffle_id: uuid.UUID
    kind: str
    at: str = Field(description="ISO 8601 UTC with microseconds, exactly as hashed.")
    data: dict[str, Any]
    prev_hash: str
    hash: str


class LedgerEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"number": 1, "ticket_id": _EXAMPLE_ID}]}
    )

    number: int
    ticket_id: uuid.UUID


class PurchaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"quantity": 2}]})

    quantity: Annotated[int, Field(ge=1, le=100_000)]


class PurchaseRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_ID,
                    "raffle_id": _EXAMPLE_ID,
                    "quantity": 2,
                    "amount": 1000,
                    "currency": "EUR",
                    "status": "reserved",
                    "reserved_until": "2026-12-02T09:15:00Z",
                    "amount_refunded": 0,
                    "created_at": "2026-12-02T09:00:00Z",
                    "ticket_numbers": [],
                }
            ]
        }
    )

    id: uuid.UUID
    raffle_id: uuid.UUID
    quantity: int
    amount: int
    currency: str
    status: PurchaseStatus
    reserved_until: datetime
    amount_refunded: int
    created_at: datetime
    ticket_numbers: list[int]


class PurchaseCreated(PurchaseRead):
    """The reservation and the Stripe PaymentIntent to confirm with Stripe.js."""

    payment_intent_id: str
    client_secret: str


class PurchaseAdminRead(PurchaseRead):
    """A purchase as the raffle's administrators see it: the buyer and the payment."""

    user_id: uuid.UUID | None
    email: str | None
    payment_intent_id: str | None
    paid_at: datetime | None
    refunded_at: datetime | None


class TicketRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_ID,
                    "raffle_id": _EXAMPLE_ID,
                    "number": 17,
                    "purchase_id": _EXAMPLE_ID,
                    "issued_at": "2026-12-02T09:01:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    raffle_id: uuid.UUID
    number: int
    purchase_id: uuid.UUID
    issued_at: datetime


DrawRecord.model_rebuild()
