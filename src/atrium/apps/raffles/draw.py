"""The provably fair draw: pure functions, the same as docs/apps/verify_draw.py computes.

- Commitment: ``SHA-256(seed)`` in lower-case hex, published when the raffle is.
- Ledger hash: ``SHA-256`` of the UTF-8 text with one line ``"{number}:{ticket_id}\\n"`` per
  ticket in number order (``ticket_id`` a lower-case canonical UUID, RFC 9562).
- Winners: with ``N`` tickets, ``limit = (2**256 // N) * N``; for ``k = 0, 1, 2, …``,
  ``h = HMAC-SHA256(key=seed, msg=ledger_hash (32 bytes) || beacon_value || k (4 bytes,
  big-endian))`` (RFC 2104), ``x = int.from_bytes(h, "big")``; if ``x < limit`` the ticket
  ``x % N + 1`` wins unless it already won (rejection sampling: every ticket has exactly
  the same chance); stop at the number of prizes (or of tickets, if fewer).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable

SEED_BYTES = 32


def commitment(seed: bytes) -> str:
    """``SHA-256(seed)`` as 64 lower-case hex digits."""
    return hashlib.sha256(seed).hexdigest()


def ledger_text(tickets: Iterable[tuple[int, uuid.UUID]]) -> str:
    """The ledger: ``"{number}:{ticket_id}\\n"`` per ``(number, ticket_id)``, by number."""
    return "".join(f"{n}:{str(t).lower()}\n" for n, t in sorted(tickets, key=lambda x: x[0]))


def ledger_hash(tickets: Iterable[tuple[int, uuid.UUID]]) -> str:
    """SHA-256 of :func:`ledger_text`, hex."""
    return hashlib.sha256(ledger_text(tickets).encode()).hexdigest()


def winners(
    seed: bytes, ledger_digest: bytes, beacon_value: bytes, tickets: int, prizes: int
) -> list[int]:
    """The winning ticket numbers (1-based), in the order drawn.

    ``ledger_digest``: the 32 bytes of the ledger hash. No ticket: no winner.

    Raises:
        ValueError: ``ledger_digest`` is not 32 bytes, or ``prizes`` is negative.
    """
    if len(ledger_digest) != 32 or prizes < 0:
        raise ValueError("the ledger hash is 32 bytes and prizes are not negative")
    if tickets <= 0:
        return []
    limit = (2**256 // tickets) * tickets
    wanted = min(prizes, tickets)
    out: list[int] = []
    k = 0
    while len(out) < wanted:
        message = ledger_digest + beacon_value + k.to_bytes(4, "big")
        x = int.from_bytes(hmac.new(seed, message, hashlib.sha256).digest(), "big")
        k += 1
        if x < limit:
            number = x % tickets + 1
            if number not in out:
                out.append(number)
    return out
