"""A fake Stripe API on loopback, driven through the real ``stripe`` library (Stripe itself
cannot be reached from the tests): PaymentIntents create / retrieve / cancel, Refunds
create, Stripe's error shapes (``{"error": {"type", "code", "message", …}}`` with its
statuses), idempotency (``Idempotency-Key``: the same key and parameters replay the first
answer with ``Idempotent-Replayed: true``; other parameters are a 400
``idempotency_error``), and webhook events signed with Stripe's scheme
(``Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<payload>")>``), delivered to
the application with :meth:`FakeStripe.deliver`."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

API_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_fake_secret"
WEBHOOK_PATH = "/api/v1/payments/stripe/webhook"
IDEMPOTENCY_MISMATCH = (
    "Keys for idempotent requests can only be used with the same parameters they were "
    "first used with."
)


def _form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[purchase_id]=…``) as nested dicts."""
    out: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _error(
    status: int, kind: str, message: str, code: str | None = None
) -> tuple[int, dict[str, Any]]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return status, {"error": error}


class FakeStripe:
    def __init__(self) -> None:
        self.url = ""
        self.lock = threading.Lock()
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.events: list[tuple[str, bytes]] = []
        self.ids = itertools.count(1)
        self.decline = False
        self.down = False
        self.calls: list[str] = []

    # --- the API --------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Any, body: str
    ) -> tuple[int, dict[str, Any], bool]:
        with self.lock:
            self.calls.append(f"{method} {path}")
            if self.down:
                return (*_error(500, "api_error", "Something went wrong on Stripe's end."), False)
            if headers.get("Authorization") != f"Bearer {API_KEY}":
                return (*_error(401, "invalid_request_error", "Invalid API Key provided."), False)
            key = headers.get("Idempotency-Key")
            fingerprint = f"{method} {path} {body}"
            if method == "POST" and key and key in self.idempotent:
                seen, status, answer = self.idempotent[key]
                if seen != fingerprint:
                    return (
                        *_error(
                            400,
                            "idempotency_error",
                            IDEMPOTENCY_MISMATCH,
                        ),
                        False,
                    )
                return status, answer, True
            status, answer = self._route(method, path, _form(body))
            if method == "POST" and key and status < 500:
                self.idempotent[key] = (fingerprint, status, answer)
            return status, answer, False

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self._create(params)
            intent = self.intents.get(parts[2]) if len(parts) > 2 else None
            if intent is None:
                return _error(
                    404,
                    "invalid_request_error",
                    f"No such payment_intent: '{parts[-1]}'",
                    "resource_missing",
                )
            if method == "GET" and len(parts) == 3:
                return 200, intent
            if method == "POST" and parts[3:] == ["cancel"]:
                if intent["status"] in ("succeeded", "canceled"):
                    return _error(
                        400,
                        "invalid_request_error",
                        f"You cannot cancel this PaymentIntent: it is {intent['status']}.",
                        "payment_intent_unexpected_state",
                    )
                intent["status"] = "canceled"
                self._event("payment_intent.canceled", intent)
                return 200, intent
        if parts == ["v1", "refunds"] and method == "POST":
            intent = self.intents.get(params.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return _error(
                    400,
                    "invalid_request_error",
                    "This PaymentIntent has no successful charge to refund.",
                    "charge_not_refundable",
                )
            refund = {
                "id": f"re_{next(self.ids)}",
                "object": "refund",
                "amount": intent["amount"],
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "status": "succeeded",
            }
            self.refunds[refund["id"]] = refund
            charge = {
                "id": f"ch_{intent['id']}",
                "object": "charge",
                "amount": intent["amount"],
                "amount_refunded": intent["amount"],
                "payment_intent": intent["id"],
                "refunded": True,
            }
            self._event("charge.refunded", charge)
            return 200, refund
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            return _error(
                400, "invalid_request_error", "Missing required param: amount.", "parameter_missing"
            )
        if self.decline:
            return _error(402, "card_error", "Your card was declined.", "card_declined")
        n = next(self.ids)
        intent = {
            "id": f"pi_{n}",
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": params.get("currency", "eur"),
            "status": "requires_payment_method",
            "client_secret": f"pi_{n}_secret_{random.getrandbits(64):016x}",
            "metadata": params.get("metadata", {}),
            "livemode": False,
            "created": int(time.time()),
        }
        self.intents[intent["id"]] = intent
        return 200, intent

    # --- what a customer or Stripe does -----------------------------------------------------

    def succeed(self, intent_id: str) -> None:
        """The customer pays: the intent succeeds and its event is queued."""
        with self.lock:
            intent = self.intents[intent_id]
            intent.update(status="succeeded", amount_received=intent["amount"])
            self._event("payment_intent.succeeded", intent)

    def fail(self, intent_id: str) -> None:
        with self.lock:
            intent = self.intents[intent_id]
            intent["status"] = "requires_payment_method"
            self._event("payment_intent.payment_failed", intent)

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        event_id = f"evt_{next(self.ids)}"
        event = {
            "id": event_id,
            "object": "event",
            "type": kind,
            "api_version": "2025-01-27",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": dict(obj)},
        }
        self.events.append((event_id, json.dumps(event).encode()))

    @staticmethod
    def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
        timestamp = int(time.time()) if at is None else at
        mac = hmac.new(
            secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
        ).hexdigest()
        return f"t={timestamp},v1={mac}"

    def take_events(self) -> list[tuple[str, bytes]]:
        with self.lock:
            events, self.events = self.events, []
        return events

    async def deliver(
        self, client: httpx.AsyncClient, events: list[tuple[str, bytes]] | None = None
    ) -> list[httpx.Response]:
        """POST the queued (or given) events to the application's webhook, signed."""
        out = []
        for _, payload in self.take_events() if events is None else events:
            headers = {"Stripe-Signature": self.sign(payload), "Content-Type": "application/json"}
            out.append(await client.post(WEBHOOK_PATH, content=payload, headers=headers))
        return out


@contextmanager
def fake_stripe(port: int = 0) -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one segment, sent at once (no Nagle/delayed-ACK stall).
        disable_nagle_algorithm = True
        wbufsize = 65536

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path = urllib.parse.urlsplit(self.path).path
            status, answer, replayed = fake.handle(method, path, self.headers, body)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("Request-Id", f"req_{next(fake.ids)}")
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
