"""What is known of an account's second factors, for the rules of every domain: whether
it has MFA, the role requirement, the login challenge and trusted devices.

Kept in ``auth`` (below ``mfa``, ``rbac`` and ``account``) so that the step-up check,
login and the role requirement can ask it without importing the MFA domain. The factors
are the verified TOTP factors (``mfa_factor``) and the passkeys (``passkey``, type
``webauthn``): a passkey is verified by its registration ceremony.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Uuid,
    bindparam,
    column,
    delete,
    exists,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.core.opaque import new_token, token_digest
from atrium.models import MfaChallenge, MfaFactor, Passkey, TrustedDevice
from atrium.models.base import UTCDateTime


async def verified_factors(db: AsyncSession, user_id: uuid.UUID) -> list[MfaFactor]:
    """The account's verified factors (pending ones excluded), oldest first."""
    rows = await db.execute(
        select(MfaFactor)
        .where(MfaFactor.user_id == user_id, MfaFactor.verified_at.is_not(None))
        .order_by(MfaFactor.created_at, MfaFactor.id)
    )
    return list(rows.scalars())


async def has_second_factor(db: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the account has MFA: at least one verified TOTP factor or one passkey (one
    query)."""
    query = select(
        or_(
            exists().where(MfaFactor.user_id == user_id, MfaFactor.verified_at.is_not(None)),
            exists().where(Passkey.user_id == user_id),
        )
    )
    return bool((await db.execute(query)).scalar())


@dataclass(frozen=True)
class FactorRef:
    """A verified second factor as a login offers it: ``id`` and ``type`` (``totp`` or
    ``webauthn``)."""

    id: uuid.UUID
    type: str


async def second_factors(db: AsyncSession, user_id: uuid.UUID) -> list[FactorRef]:
    """The account's verified factors, TOTP first then passkeys, oldest first (one query:
    every login of every account asks it)."""
    totp = select(
        MfaFactor.id,
        MfaFactor.type,
        literal(0).label("kind"),
        MfaFactor.created_at,
    ).where(MfaFactor.user_id == user_id, MfaFactor.verified_at.is_not(None))
    passkeys = select(
        Passkey.id,
        literal("webauthn").label("type"),
        literal(1).label("kind"),
        Passkey.created_at,
    ).where(Passkey.user_id == user_id)
    both = union_all(totp, passkeys).subquery()
    rows = await db.execute(
        select(both.c.id, both.c.type).order_by(both.c.kind, both.c.created_at, both.c.id)
    )
    return [FactorRef(factor_id, factor_type) for factor_id, factor_type in rows]


@dataclass(frozen=True)
class MfaRequirement:
    """Whether the account must use a second factor because of a role it holds.

    ``required``: a held role (or one it inherits from) has ``mfa_required`` and
    ``mfa.role_requirement_enabled`` is on; ``has_factor``: the account has MFA;
    ``deadline``: required without a factor, the end of the grace period
    (``mfa.enrollment_grace_period_seconds`` after the earliest grant of such a role).
    """

    required: bool
    has_factor: bool
    deadline: datetime | None = None

    def restricted(self, now: datetime) -> bool:
        """Past the grace period without a factor: only enrolment remains reachable."""
        return self.deadline is not None and now >= self.deadline

    def in_grace(self, now: datetime) -> bool:
        return self.deadline is not None and now < self.deadline


# The earliest grant of a held role that requires MFA itself or through a role it inherits
# from (role_parent, walked upwards; UNION stops at a cycle). One query, on the caller's
# own transaction: on SQLite a second connection would wait for its write lock.
_EARLIEST_REQUIRING_GRANT = (
    text(
        """
    WITH RECURSIVE up(held_id, role_id) AS (
        SELECT role_id, role_id FROM user_role WHERE user_id = :user_id
        UNION
        SELECT up.held_id, rp.parent_id FROM up JOIN role_parent rp ON rp.role_id = up.role_id
    )
    SELECT min(ur.granted_at) FROM up
    JOIN role r ON r.id = up.role_id
    JOIN user_role ur ON ur.role_id = up.held_id AND ur.user_id = :user_id
    WHERE r.mfa_required
    """
    )
    .bindparams(bindparam("user_id", type_=Uuid()))
    .columns(column("min", UTCDateTime()))
)


async def mfa_requirement(db: AsyncSession, ctx: AppContext, user_id: uuid.UUID) -> MfaRequirement:
    """The role requirement of ``user_id`` (nothing asked when
    ``mfa.role_requirement_enabled`` is off): one query, and one more for holders."""
    if not ctx.settings.mfa.role_requirement_enabled:
        return MfaRequirement(required=False, has_factor=False)
    granted = (await db.execute(_EARLIEST_REQUIRING_GRANT, {"user_id": user_id})).scalar()
    if granted is None:
        return MfaRequirement(required=False, has_factor=False)
    if await has_second_factor(db, user_id):
        return MfaRequirement(required=True, has_factor=True)
    grace = timedelta(seconds=ctx.settings.mfa.enrollment_grace_period_seconds)
    return MfaRequirement(required=True, has_factor=False, deadline=granted + grace)


def client_digest(client: ClientInfo) -> bytes:
    """What binds an ``mfa_token`` to the client that gave the password: SHA-256 of its
    address and user agent."""
    return hashlib.sha256(f"{client.ip_address}\n{client.user_agent}".encode()).digest()


async def open_challenge(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, client: ClientInfo, amr: list[str]
) -> tuple[str, MfaChallenge]:
    """Record that ``user_id`` proved ``amr`` (``["pwd"]``) and must now give a second
    factor: a single-use ``mfa_token`` (256 random bits, stored as its SHA-256) valid
    ``mfa.challenge_ttl_seconds`` for this client only. The raw token and the row."""
    now = ctx.clock.now()
    raw = new_token()
    challenge = MfaChallenge(
        id=uuid.uuid4(),
        user_id=user_id,
        token_hash=token_digest(raw),
        client_hash=client_digest(client),
        amr=amr,
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.mfa.challenge_ttl_seconds),
    )
    # Spent and expired challenges of the account go as new ones come.
    await db.execute(
        delete(MfaChallenge).where(
            MfaChallenge.user_id == user_id,
            or_(MfaChallenge.expires_at <= now, MfaChallenge.used_at.is_not(None)),
        )
    )
    db.add(challenge)
    await db.flush()
    return raw, challenge


async def trusted_device(
    db: AsyncSession, ctx: AppContext, user_id: uuid.UUID, raw: str | None
) -> TrustedDevice | None:
    """The live trusted device of ``user_id`` whose ``device_token`` is ``raw``."""
    if not raw or len(raw) > 128:
        return None
    now = ctx.clock.now()
    device = (
        await db.execute(
            select(TrustedDevice).where(
                TrustedDevice.user_id == user_id,
                TrustedDevice.token_hash == token_digest(raw),
                TrustedDevice.expires_at > now,
            )
        )
    ).scalar_one_or_none()
    if device is not None:
        device.last_used_at = now
        await db.flush()
    return device
