#!/usr/bin/env python3
"""Verify a LuxeWin raffle draw from its public data alone (Python 3.11+, standard library
only). The algorithm is the one of docs/apps/raffles.md, "The draw".

    python3 verify_draw.py --url https://shop.example --raffle <id> [--log] [--beacon]
    python3 verify_draw.py --draw draw.json --ledger ledger.json [--log log.json]

With ``--url`` the draw record (``GET /api/v1/raffles/{id}/draw``), the ledger
(``…/ledger``, every page) and with ``--log`` the whole draw log
(``GET /api/v1/raffles/draw-log``) are fetched; with files, ``ledger.json`` and
``log.json`` are JSON lists of the ``items`` of those lists. ``--beacon`` asks the drand
beacon named in the record for the round again. Exit status 0 when everything holds,
1 with one ``FAIL:`` line per problem.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import urllib.parse
import urllib.request
import uuid
from typing import Any

GENESIS = "0" * 64


def ledger_hash(tickets: list[tuple[int, uuid.UUID]]) -> str:
    text = "".join(f"{n}:{str(t).lower()}\n" for n, t in sorted(tickets, key=lambda x: x[0]))
    return hashlib.sha256(text.encode()).hexdigest()


def winners(
    seed: bytes, ledger_digest: bytes, beacon_value: bytes, n: int, prizes: int
) -> list[int]:
    if n <= 0:
        return []
    limit = (2**256 // n) * n
    out: list[int] = []
    k = 0
    while len(out) < min(prizes, n):
        h = hmac.new(seed, ledger_digest + beacon_value + k.to_bytes(4, "big"), hashlib.sha256)
        x = int.from_bytes(h.digest(), "big")
        k += 1
        if x < limit and x % n + 1 not in out:
            out.append(x % n + 1)
    return out


def check_draw(record: dict[str, Any], ledger: list[dict[str, Any]]) -> list[str]:
    if record.get("seed") is None:
        return ["the seed is not published (the raffle is neither drawn nor cancelled)"]
    problems = []
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
    drawn = winners(
        seed, bytes.fromhex(record["ledger_hash"]), value, len(tickets), record["prizes"]
    )
    published = [w["number"] for w in record["winners"] or []]
    if drawn != published:
        problems.append(f"the algorithm draws {drawn}, the record says {published}")
    ids = dict(tickets)
    for w in record["winners"] or []:
        if ids.get(w["number"]) != uuid.UUID(w["ticket_id"]):
            problems.append(f"winning ticket {w['number']} is not the ledger's")
    return problems


def entry_hash(e: dict[str, Any]) -> str:
    body = {k: e[k] for k in ("seq", "raffle_id", "kind", "at", "data", "prev_hash")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_log(entries: list[dict[str, Any]], record: dict[str, Any] | None) -> list[str]:
    problems = []
    previous = GENESIS
    for seq, e in enumerate(entries, start=1):
        if e["seq"] != seq:
            problems.append(f"log entry {e['seq']}: expected seq {seq}")
        if e["prev_hash"] != previous:
            problems.append(f"log entry {e['seq']}: prev_hash does not link to the previous entry")
        if entry_hash(e) != e["hash"]:
            problems.append(f"log entry {e['seq']}: its hash does not match its content")
        previous = e["hash"]
    if record is not None:
        for e in entries:
            if e["raffle_id"] != str(record["raffle_id"]):
                continue
            if e["data"].get("commitment", record["commitment"]) != record["commitment"]:
                problems.append(f"log entry {e['seq']}: another commitment than the record's")
            numbers = [w["number"] for w in record["winners"] or []]
            if e["kind"] == "draw" and e["data"]["winners"] != numbers:
                problems.append(f"log entry {e['seq']}: other winners than the record's")
    return problems


def check_beacon(record: dict[str, Any]) -> list[str]:
    """Ask drand for the record's round: randomness must be SHA-256(signature) and equal
    the record's beacon value."""
    chain = record["beacon"].removeprefix("drand:")
    address = f"{record['beacon_url'].rstrip('/')}/{chain}/public/{record['beacon_round']}"
    body = _get(address)
    signature = bytes.fromhex(body["signature"])
    problems = []
    if hashlib.sha256(signature).hexdigest() != body["randomness"]:
        problems.append("the beacon's randomness is not SHA-256 of its signature")
    if body["randomness"] != record["beacon_value"]:
        problems.append("the beacon's value of the round is not the record's")
    return problems


def _get(address: str) -> Any:
    with urllib.request.urlopen(address, timeout=30) as response:  # noqa: S310 (http/https)
        return json.load(response)


def _pages(address: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = _get(f"{address}?{urllib.parse.urlencode(query)}")
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _load(path: str) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="the shop's base URL")
    parser.add_argument("--raffle", help="the raffle's id (with --url)")
    parser.add_argument("--draw", help="the draw record, a JSON file")
    parser.add_argument("--ledger", help="the ledger's items, a JSON file")
    parser.add_argument(
        "--log",
        nargs="?",
        const="",
        default=None,
        help="check the draw log (a JSON file without --url)",
    )
    parser.add_argument("--beacon", action="store_true", help="ask the beacon for the round again")
    args = parser.parse_args(argv)
    record = ledger = None
    if args.url:
        base = args.url.rstrip("/") + "/api/v1/raffles"
        if args.raffle:
            record = _get(f"{base}/{args.raffle}/draw")
            ledger = _pages(f"{base}/{args.raffle}/ledger")
        log = _pages(f"{base}/draw-log") if args.log is not None else None
    else:
        if args.draw:
            record, ledger = _load(args.draw), _load(args.ledger) if args.ledger else []
        log = _load(args.log) if args.log else None
    if record is None and log is None:
        parser.error("give a raffle (--url and --raffle, or --draw and --ledger) or --log")
    problems = []
    if record is not None:
        problems += check_draw(record, ledger or [])
        if args.beacon and record["status"] == "drawn" and record["beacon_value"]:
            problems += check_beacon(record)
    if log is not None:
        problems += check_log(log, record)
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        if record is not None:
            numbers = ", ".join(str(w["number"]) for w in record["winners"] or []) or "none"
            print(f"ok: raffle {record['raffle_id']} {record['status']}; winners: {numbers}")
        if log is not None:
            print(f"ok: draw log of {len(log)} entries, chain intact")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
