"""Second-factor verifiers, keyed by the request member that carries the proof.

``/auth/mfa/verify`` and ``/auth/step-up`` take exactly one proof member (``code``,
``recovery_code``, ``webauthn``); :func:`check_second_factor` finds its verifier in
:data:`VERIFIERS`, runs it under the per-account login throttle and records a failure as
a failed login.

A factor type stored in a higher domain registers its verifier from there (passkeys:
``atrium.passkeys.second_factor.WebAuthnVerifier``, member ``webauthn``) and adds its
member to ``schemas.FACTOR_MEMBERS``. A verifier answers None for a wrong proof
(never raises for it), and makes any single-use rule atomic itself (a conditional UPDATE).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.assurance import verified_factors
from atrium.context import AppContext
from atrium.mfa import recovery, totp
from atrium.mfa.crypto import SecretBox
from atrium.mfa.repository import MfaRepository
from atrium.models import User


@dataclass(frozen=True)
class Proof:
    """A second factor proven: ``method`` (``totp``, ``recovery_code``, ...), the RFC 8176
    ``amr`` values it adds, the factor used (None for a recovery code)."""

    method: str
    amr: tuple[str, ...]
    factor_id: uuid.UUID | None = None


class FactorVerifier(Protocol):
    member: str

    async def verify(
        self, db: AsyncSession, ctx: AppContext, user: User, value: Any, now: datetime
    ) -> Proof | None: ...


class TotpVerifier:
    """A 6-digit TOTP code of any verified TOTP factor of the account, ±1 step, each
    step accepted once per factor (``mfa_factor.last_used_step``)."""

    member = "code"

    async def verify(
        self, db: AsyncSession, ctx: AppContext, user: User, value: Any, now: datetime
    ) -> Proof | None:
        box = secret_box(ctx)
        repo = MfaRepository(db)
        for factor in await verified_factors(db, user.id):
            if factor.type != "totp" or factor.secret_encrypted is None:
                continue
            step = totp.matching_step(box.decrypt(factor.secret_encrypted), str(value), now)
            if step is not None:
                if not await repo.accept_step(factor.id, step, now):
                    return None  # replayed: that step (or a later one) was already used
                return Proof(method="totp", amr=("otp",), factor_id=factor.id)
        return None


class RecoveryCodeVerifier:
    """One unused recovery code of the account, spent atomically."""

    member = "recovery_code"

    async def verify(
        self, db: AsyncSession, ctx: AppContext, user: User, value: Any, now: datetime
    ) -> Proof | None:
        if recovery.canonical(str(value)) is None:
            return None
        if not await MfaRepository(db).use_recovery_code(
            user.id, recovery.code_hash(str(value)), now
        ):
            return None
        return Proof(method="recovery_code", amr=("otp",))


VERIFIERS: dict[str, FactorVerifier] = {}


def register_verifier(verifier: FactorVerifier) -> None:
    """Make ``verifier`` answer proofs given in its request member."""
    VERIFIERS[verifier.member] = verifier


register_verifier(TotpVerifier())
register_verifier(RecoveryCodeVerifier())


# Settings object id -> (the settings, their box). The settings are kept so that an id is
# never reused by another object while its entry exists.
_BOXES: dict[int, tuple[object, SecretBox]] = {}


def secret_box(ctx: AppContext) -> SecretBox:
    """The :class:`SecretBox` of the application's settings (built once per settings).

    Raises:
        ValueError: a key of ``mfa.encryption_keys`` is not a Fernet key.
    """
    entry = _BOXES.get(id(ctx.settings))
    if entry is not None and entry[0] is ctx.settings:
        return entry[1]
    if len(_BOXES) >= 16:
        _BOXES.clear()
    box = SecretBox(ctx.settings)
    _BOXES[id(ctx.settings)] = (ctx.settings, box)
    return box
