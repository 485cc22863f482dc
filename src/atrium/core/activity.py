"""The in-process buffer of account activity and login counts (no database write per
request).

Every authenticated request adds to a counter in memory (:meth:`ActivityBuffer.seen`, a
dictionary update: no I/O); every login adds to the counts by method and outcome
(:meth:`ActivityBuffer.login`). The activity domain drains the buffer every
``activity.flush_interval_seconds`` and merges it into the daily rollups
(``atrium.activity.store.flush``): additive upserts, so any number of API processes
flush into the same rows. What a process had not flushed when it stopped abruptly is lost
(at most one interval of counts): activity is statistics, not an audit trail.

Privacy (GDPR art. 5(1)(c), data minimisation): the buffer keeps per account and day the
first and last time seen, counters, the ids of the sessions seen that day (only to count
them) and the client's network with the host part cut off (:func:`truncate_ip`), never a
full address nor a path.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

LOGIN_METHODS = ("password", "mfa", "passkey", "social")
"""The methods logins are counted by (``login_day.method``)."""


def truncate_ip(address: str | None, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> str | None:
    """The network of ``address`` with the host bits cleared, as ``"203.0.113.0/24"``
    (IPv4, first ``ipv4_prefix`` bits kept) or ``"2001:db8:1::/48"`` (IPv6); an
    IPv4-mapped IPv6 address counts as IPv4. None for None or a value that is not an
    address (e.g. ``"testclient"``). The truncation recommended for analytics by data
    protection authorities (e.g. the CNIL's guidance on audience measurement).
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def login_method(amr: tuple[str, ...] | list[str]) -> str:
    """The ``login_day`` method of a successful login from its RFC 8176 ``amr``: ``mfa``
    when a second factor completed it (``mfa``, which the second-factor step adds),
    ``social`` (a federated identity, ``fed``), ``passkey`` (``hwk``/``swk``), else
    ``password``."""
    methods = set(amr)
    if "mfa" in methods:
        return "mfa"
    if "fed" in methods:
        return "social"
    if methods & {"hwk", "swk"}:
        return "passkey"
    return "password"


@dataclass
class DayActivity:
    """What one account did on one day, as buffered since the last flush."""

    first_seen_at: datetime
    last_seen_at: datetime
    requests: int = 0
    logins: int = 0
    sessions: int = 0
    ip_prefix: str | None = None


@dataclass
class Drained:
    """What :meth:`ActivityBuffer.drain` hands to the flush."""

    activity: dict[tuple[uuid.UUID, date], DayActivity]
    logins: dict[tuple[date, str, str], int]


@dataclass
class ActivityBuffer:
    """Counters in memory until the next flush. ``enabled`` False (``activity.enabled``)
    records nothing. Not thread-safe by design: it is used from the event loop only."""

    enabled: bool = True
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    _activity: dict[tuple[uuid.UUID, date], DayActivity] = field(default_factory=dict)
    _logins: dict[tuple[date, str, str], int] = field(default_factory=dict)
    # Sessions seen per account and day, kept across flushes (until the day is over) so
    # that a session seen before and after a flush counts once.
    _sessions: dict[tuple[uuid.UUID, date], set[uuid.UUID]] = field(default_factory=dict)

    def _entry(self, user_id: uuid.UUID, at: datetime) -> DayActivity:
        key = (user_id, at.date())
        entry = self._activity.get(key)
        if entry is None:
            entry = self._activity[key] = DayActivity(first_seen_at=at, last_seen_at=at)
        elif at > entry.last_seen_at:
            entry.last_seen_at = at
        return entry

    def seen(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        ip_address: str | None,
        at: datetime,
    ) -> None:
        """One authenticated request of ``user_id`` (through ``session_id``, an API key's
        id for an API key) at ``at`` (aware UTC) from ``ip_address``."""
        if not self.enabled:
            return
        entry = self._entry(user_id, at)
        entry.requests += 1
        if session_id is not None:
            seen = self._sessions.setdefault((user_id, at.date()), set())
            if session_id not in seen:
                seen.add(session_id)
                entry.sessions = len(seen)
        if ip_address is not None and entry.ip_prefix is None:
            entry.ip_prefix = truncate_ip(ip_address, self.ipv4_prefix, self.ipv6_prefix)

    def login(self, method: str, success: bool, user_id: uuid.UUID | None, at: datetime) -> None:
        """A login attempt by ``method`` (one of :data:`LOGIN_METHODS`); a success also
        counts in the account's day."""
        if not self.enabled:
            return
        key = (at.date(), method, "success" if success else "failure")
        self._logins[key] = self._logins.get(key, 0) + 1
        if success and user_id is not None:
            self._entry(user_id, at).logins += 1

    def pending(self) -> int:
        """How many account-days and login counters wait for the next flush."""
        return len(self._activity) + len(self._logins)

    def drain(self, today: date) -> Drained:
        """Take everything buffered (the buffer starts empty again) and forget the
        session sets of days before ``today``."""
        out = Drained(self._activity, self._logins)
        self._activity, self._logins = {}, {}
        for key in [k for k in self._sessions if k[1] < today]:
            del self._sessions[key]
        return out

    def restore(self, drained: Drained) -> None:
        """Put back what a failed flush took, merged with what arrived meanwhile."""
        for key, old in drained.activity.items():
            new = self._activity.get(key)
            if new is None:
                self._activity[key] = old
                continue
            new.first_seen_at = min(new.first_seen_at, old.first_seen_at)
            new.last_seen_at = max(new.last_seen_at, old.last_seen_at)
            new.requests += old.requests
            new.logins += old.logins
            new.sessions = max(new.sessions, old.sessions)
            new.ip_prefix = new.ip_prefix or old.ip_prefix
        for lkey, count in drained.logins.items():
            self._logins[lkey] = self._logins.get(lkey, 0) + count
