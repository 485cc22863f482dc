"""Randomness beacons for the draw: a pluggable client, drand by default.

A beacon publishes, at known times, values nobody can predict or choose. A raffle commits,
when published, to the first round due *after* its ``closes_at``; its value is unknown
until after the ticket ledger is frozen, so no one (the operator included) can grind the
outcome by buying tickets.

drand (https://drand.love/docs/specification/): round ``r`` is emitted at
``genesis_time + (r - 1) * period``; ``GET {url}/{chain_hash}/public/{r}`` answers
``{"round", "randomness", "signature"}``, where for the unchained schemes (quicknet)
``randomness = SHA-256(signature)``, which the client checks. It does not check the BLS
signature against the chain's public key (a verifier can, with any drand client).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import httpx

from atrium.apps.raffles.exceptions import BeaconUnavailable
from atrium.apps.raffles.settings import RafflesSettings
from atrium.core.outbound import http_client


class Beacon(Protocol):
    """What the draw needs of a randomness beacon."""

    @property
    def name(self) -> str:
        """Published with the commitment: which beacon and chain (``drand:<chain hash>``)."""
        ...

    def round_after(self, at: datetime) -> int:
        """The first round emitted strictly after ``at``."""
        ...

    def round_time(self, round_: int) -> datetime:
        """When ``round_`` is emitted (UTC)."""
        ...

    async def value(self, round_: int) -> bytes | None:
        """The round's value (bytes), or None while it is not emitted yet.

        Raises:
            BeaconUnavailable: the beacon cannot be reached or answers nonsense.
        """
        ...


class DrandBeacon:
    """A drand chain over its HTTP API."""

    def __init__(
        self, url: str, chain_hash: str, genesis: int, period: int, timeout: float
    ) -> None:
        self.url = url.rstrip("/")
        self.chain_hash = chain_hash
        self.genesis = genesis
        self.period = period
        self.timeout = timeout

    @property
    def name(self) -> str:
        return f"drand:{self.chain_hash}"

    def round_after(self, at: datetime) -> int:
        elapsed = at.timestamp() - self.genesis
        if elapsed < 0:
            return 1
        return math.floor(elapsed / self.period) + 2

    def round_time(self, round_: int) -> datetime:
        return datetime.fromtimestamp(self.genesis + (round_ - 1) * self.period, UTC)

    async def value(self, round_: int) -> bytes | None:
        address = f"{self.url}/{self.chain_hash}/public/{round_}"
        try:
            async with http_client(self.timeout) as client:
                response = await client.get(address)
        except httpx.HTTPError as exc:
            raise BeaconUnavailable(f"drand: {type(exc).__name__}") from exc
        if response.status_code in (404, 425):
            return None  # not emitted yet (drand answers 425 Too Early or 404)
        if response.status_code != 200:
            raise BeaconUnavailable(f"drand answered {response.status_code}")
        try:
            body = response.json()
            signature = bytes.fromhex(body["signature"])
            randomness = bytes.fromhex(body["randomness"])
            answered = int(body["round"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BeaconUnavailable("drand answered an unreadable round") from exc
        if answered != round_ or hashlib.sha256(signature).digest() != randomness:
            raise BeaconUnavailable("drand's round does not match its signature")
        return randomness


BeaconFactory = Callable[[RafflesSettings], Beacon]


def _drand(settings: RafflesSettings) -> Beacon:
    return DrandBeacon(
        settings.beacon_url,
        settings.beacon_chain_hash,
        settings.beacon_genesis_time,
        settings.beacon_period_seconds,
        settings.beacon_timeout_seconds,
    )


BEACONS: dict[str, BeaconFactory] = {"drand": _drand}


def register_beacon(kind: str, factory: BeaconFactory) -> None:
    """Make another beacon kind selectable with ``ATRIUM_RAFFLES__BEACON=<kind>``."""
    BEACONS[kind] = factory


def beacon_for(settings: RafflesSettings) -> Beacon:
    """The beacon the settings name.

    Raises:
        BeaconUnavailable: no beacon of that kind is registered.
    """
    factory = BEACONS.get(settings.beacon)
    if factory is None:
        raise BeaconUnavailable(f"no beacon of kind {settings.beacon!r}")
    return factory(settings)
