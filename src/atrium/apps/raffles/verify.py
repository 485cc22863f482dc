"""Checking a draw from its public data alone: the draw record, the ledger and the draw
log, as the API publishes them (JSON values). ``atrium raffles verify`` runs these checks;
docs/apps/verify_draw.py does the same with the standard library only."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from atrium.apps.raffles.draw import ledger_hash, winners
from atrium.apps.raffles.drawlog import GENESIS, entry_hash


def check_draw(record: dict[str, Any], ledger: list[dict[str, Any]]) -> list[str]:
    """Problems found in a ``drawn`` or ``cancelled`` raffle's record (empty: it holds).

    Checks ``SHA-256(seed) == commitment``; for a drawn raffle, that the ledger is
    numbered 1..N, hashes to ``ledger_hash`` and that the algorithm gives the winners."""
    problems: list[str] = []
    if record.get("seed") is None:
        return ["the seed is not published (the raffle is neither drawn nor cancelled)"]
    seed = bytes.fromhex(record["seed"])
    if hashlib.sha256(seed).hexdigest() != record["commitment"]:
        problems.append("SHA-256(seed) is not the published commitment")
    if record["status"] != "drawn":
        return problems
    tickets = [(int(e["number"]), uuid.UUID(e["ticket_id"])) for e in ledger]
    if [n for n, _ in tickets] != list(range(1, len(tickets) + 1)):
        problems.append("the ledger is not numbered 1..N")
    if len(tickets) != record["ticket_count"]:
        problems.append("the ledger does not hold ticket_count tickets")
    if ledger_hash(tickets) != record["ledger_hash"]:
        problems.append("the ledger does not hash to ledger_hash")
    value = bytes.fromhex(record["beacon_value"] or "")
    expected = winners(
        seed, bytes.fromhex(record["ledger_hash"]), value, len(tickets), record["prizes"]
    )
    published = [w["number"] for w in record["winners"] or []]
    if expected != published:
        problems.append(f"the algorithm draws {expected}, the record says {published}")
    ids = dict(tickets)
    for w in record["winners"] or []:
        if ids.get(w["number"]) != uuid.UUID(w["ticket_id"]):
            problems.append(f"winning ticket {w['number']} is not the ledger's")
    return problems


def check_log(entries: list[dict[str, Any]], record: dict[str, Any] | None = None) -> list[str]:
    """Problems in the hash chain of ``entries`` (the whole log, from ``seq`` 1), and, with
    ``record``, entries of its raffle that disagree with it."""
    problems: list[str] = []
    previous = GENESIS
    for expected_seq, e in enumerate(entries, start=1):
        if e["seq"] != expected_seq:
            problems.append(f"entry {e['seq']}: expected seq {expected_seq}")
        if e["prev_hash"] != previous:
            problems.append(f"entry {e['seq']}: prev_hash does not link to the previous entry")
        actual = entry_hash(e["seq"], e["raffle_id"], e["kind"], e["at"], e["data"], e["prev_hash"])
        if actual != e["hash"]:
            problems.append(f"entry {e['seq']}: its hash does not match its content")
        previous = e["hash"]
    if record is not None:
        for e in entries:
            if e["raffle_id"] != str(record["raffle_id"]):
                continue
            if e["data"].get("commitment", record["commitment"]) != record["commitment"]:
                problems.append(f"entry {e['seq']}: another commitment than the record's")
            if e["kind"] == "draw" and e["data"]["winners"] != [
                w["number"] for w in record["winners"] or []
            ]:
                problems.append(f"entry {e['seq']}: other winners than the record's")
    return problems
