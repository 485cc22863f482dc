"""Brute-force defence for password login: growing delays, never a lock-out.

Failed logins are counted per account (by email, whether or not the account exists, so
the defence reveals nothing) and per client IP, in a moving window. Past a threshold each
further attempt must wait ``base * 2^(failures - threshold)`` seconds after the previous
failure, capped at ``login_delay_max_seconds``: an attacker's guessing rate collapses,
while the owner is never locked out for longer than the cap (OWASP Authentication Cheat
Sheet, "Account lockout": prefer throttling to lockout, which an attacker can use to deny
service). A success clears the account's count.

Concurrency: an attempt that passes the check holds the account's guard (an atomic
``SET NX`` in Redis, an atomic add in the in-process cache) until its outcome is recorded,
and concurrent attempts on that account are refused meanwhile. Without it, every request
arriving while the delay had just expired would read the same state and all be judged.
So at most one guess per account is verified per delay window, whatever the concurrency.
"""

from __future__ import annotations

import contextlib
import hashlib
import math

from atrium.auth.exceptions import LoginThrottled
from atrium.context import AppContext
from atrium.core.cache import CacheError


def subject_key(value: str) -> str:
    """A stable, non-reversible key for an email or address (no PII in cache keys)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


# How long an attempt's guard outlives a process that died while verifying: normally
# released as soon as the outcome is recorded.
GUARD_TTL_SECONDS = 30.0


class LoginThrottle:
    ACCOUNT, IP = "login_failures_account", "login_failures_ip"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.rate_limit

    def _delay(self, failures: int, threshold: int) -> float:
        if failures < threshold:
            return 0.0
        return float(
            min(
                self.cfg.login_delay_base_seconds * 2 ** (failures - threshold),
                self.cfg.login_delay_max_seconds,
            )
        )

    async def check(self, account: str, ip: str) -> None:
        """Raise :class:`LoginThrottled` when ``account`` or ``ip`` must still wait.

        Raises:
            LoginThrottled: 429 with ``Retry-After``.
        """
        if not self.ctx.ratelimiter.enabled:
            return
        limiter = self.ctx.ratelimiter
        delays = [
            self._delay(
                await limiter.count(self.ACCOUNT, account), self.cfg.login_failures_per_account
            ),
            self._delay(await limiter.count(self.IP, ip), self.cfg.login_failures_per_ip),
        ]
        if not any(delays):
            return
        last = await self._last_failures(account, ip)
        now = self.ctx.clock.now().timestamp()
        wait = max(
            (delay - (now - at) for delay, at in zip(delays, last, strict=True) if delay and at),
            default=0.0,
        )
        if wait > 0:
            raise LoginThrottled(retry_after=max(1, math.ceil(wait)))

    async def reserve(self, account: str, ip: str) -> None:
        """Take the account's guard, then :meth:`check` while holding it; :meth:`release`
        gives it back once the attempt's outcome is recorded (``failed`` or
        ``succeeded``). Checking after taking the guard matters: a check made before could
        read the state of a moment before another attempt's failure was recorded.

        Raises:
            LoginThrottled: 429 with ``Retry-After``: the account or address must still
                wait, or another attempt on the account is being verified (1 s).
        """
        if self.ctx.ratelimiter.enabled:
            try:
                taken = await self.ctx.cache.add(f"lg:a:{account}", b"1", GUARD_TTL_SECONDS)
            except CacheError:
                # As for the delays: without the cache the per-route rate limit still applies.
                taken = True
            if not taken:
                raise LoginThrottled(retry_after=1)
        try:
            await self.check(account, ip)
        except BaseException:
            await self.release(account)
            raise

    async def release(self, account: str) -> None:
        """Give back the guard taken by :meth:`reserve` (never raises)."""
        if not self.ctx.ratelimiter.enabled:
            return
        # On a cache error the guard expires after GUARD_TTL_SECONDS.
        with contextlib.suppress(CacheError):
            await self.ctx.cache.delete(f"lg:a:{account}")

    async def failed(self, account: str, ip: str) -> bool:
        """Record a failure; True when the account has just reached the threshold."""
        limiter = self.ctx.ratelimiter
        await limiter.record(self.ACCOUNT, account)
        await limiter.record(self.IP, ip)
        now = str(self.ctx.clock.now().timestamp()).encode()
        ttl = self.cfg.login_delay_max_seconds + 60
        try:
            await self.ctx.cache.set(f"lf:a:{account}", now, ttl)
            await self.ctx.cache.set(f"lf:ip:{ip}", now, ttl)
        except CacheError:
            # Without the time of the last failure no delay is enforced; the per-route
            # rate limit still applies.
            pass
        return await limiter.count(self.ACCOUNT, account) == self.cfg.login_failures_per_account

    async def succeeded(self, account: str) -> None:
        await self.ctx.ratelimiter.reset(self.ACCOUNT, account)

    async def _last_failures(self, account: str, ip: str) -> list[float]:
        try:
            values = await self.ctx.cache.get_many([f"lf:a:{account}", f"lf:ip:{ip}"])
        except CacheError:
            return [0.0, 0.0]
        return [float(v) if v else 0.0 for v in values]
