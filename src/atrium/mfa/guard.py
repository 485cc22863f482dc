"""Second factors and re-entered passwords under the login throttle.

Every guess of a code or password here counts in the per-account brute-force throttle of
password logins (:class:`atrium.auth.bruteforce.LoginThrottle`, keyed by the account's
email): the attempt takes the account's guard, so concurrent guesses on one account are
refused (429) while one is judged, and each failure grows the delay before the next. A
failure is an ``auth.mfa_failed`` audit event (kept although the request fails).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.bruteforce import LoginThrottle, subject_key
from atrium.auth.service import AuthService
from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.mfa.exceptions import InvalidOtp, StepUpFailed, UnsupportedMethod
from atrium.mfa.verifiers import VERIFIERS, Proof
from atrium.models import User


async def _throttled(
    db: AsyncSession,
    ctx: AppContext,
    user: User,
    client: ClientInfo,
    method: str,
    attempt: Callable[[], Awaitable[Proof | None]],
    failure: Callable[[], Exception],
) -> Proof:
    throttle = LoginThrottle(ctx)
    account = subject_key(user.email_normalized)
    ip = client.ip_address or "unknown"
    await throttle.reserve(account, ip)
    try:
        proof = await attempt()
        now = ctx.clock.now()
        if proof is None:
            await record(
                db,
                "auth.mfa_failed",
                at=now,
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                details={"method": method},
            )
            if await throttle.failed(account, ip):
                await AuthService(db, ctx).notify_throttled(user, now, client)
            raise failure()
        await throttle.succeeded(account)
        return proof
    finally:
        await throttle.release(account)


async def check_second_factor(
    db: AsyncSession, ctx: AppContext, user: User, member: str, value: Any, client: ClientInfo
) -> Proof:
    """Verify the proof ``value`` given in request member ``member`` (see verifiers.py).

    Raises:
        UnsupportedMethod: 400, no verifier answers that member.
        LoginThrottled: 429, the account or address must wait.
        InvalidOtp: 401, the proof is wrong, expired or replayed (counted).
    """
    verifier = VERIFIERS.get(member)
    if verifier is None:
        raise UnsupportedMethod(f"No second factor is given as {member!r}.")

    async def attempt() -> Proof | None:
        return await verifier.verify(db, ctx, user, value, ctx.clock.now())

    message = (
        "The passkey could not be verified." if member == "webauthn" else "The code is not valid."
    )
    return await _throttled(db, ctx, user, client, member, attempt, lambda: InvalidOtp(message))


async def check_password(
    db: AsyncSession, ctx: AppContext, user: User, password: str, client: ClientInfo
) -> Proof:
    """Verify the account's password again (step-up).

    Raises:
        LoginThrottled: 429.
        StepUpFailed: 401 ``invalid_credentials`` (counted).
    """

    async def attempt() -> Proof | None:
        ok, _ = await ctx.hasher.verify(password, user.password_hash)
        return Proof(method="password", amr=("pwd",)) if ok else None

    return await _throttled(
        db,
        ctx,
        user,
        client,
        "password",
        attempt,
        lambda: StepUpFailed("The password is incorrect."),
    )
