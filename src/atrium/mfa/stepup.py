"""Step-up: authenticate again inside a live session (RFC 9470 §4; NIST SP 800-63B
§7.2 reauthentication), to pass :data:`atrium.auth.stepup.StepUp` checks."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.assurance import has_second_factor
from atrium.auth.principal import Principal
from atrium.auth.repository import SessionRepository
from atrium.auth.schemas import TokenResponse
from atrium.auth.signin import SignIn
from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.core.tokens import Assurance
from atrium.errors import InvalidToken
from atrium.mfa.exceptions import UnsupportedMethod
from atrium.mfa.guard import check_password, check_second_factor
from atrium.mfa.notices import Notices
from atrium.mfa.repository import MfaRepository
from atrium.mfa.schemas import StepUpRequest
from atrium.mfa.verifiers import Proof
from atrium.models import User
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)


async def after_proof(db: AsyncSession, ctx: AppContext, user: User, proof: Proof) -> None:
    """What a successful proof entails beyond the session: a recovery code used emails
    the owner with the number left."""
    if proof.method == "recovery_code":
        left = await MfaRepository(db).recovery_codes_left(user.id)
        await Notices(db, ctx).recovery_code_used(user, left, ctx.clock.now())


def merged_amr(*groups: tuple[str, ...] | list[str], aal: int) -> tuple[str, ...]:
    """The RFC 8176 methods of ``groups`` in order, once each, with ``mfa`` at aal2."""
    out = dict.fromkeys(m for group in groups for m in group if m != "mfa")
    if aal >= 2:
        out["mfa"] = None
    return tuple(out)


def _second_factor_reaches_aal2(session_amr: list[str], proof: Proof) -> bool:
    """A code is a second factor beside whatever opened the session; a passkey without
    user verification is one only beside a password or a code (a session opened by a
    passkey does not become multi-factor by presenting a passkey again)."""
    if proof.method != "webauthn" or "user" in proof.amr:
        return True
    return bool({"pwd", "otp"}.intersection(session_amr))


class StepUpService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx

    async def step_up(
        self, principal: Principal, body: StepUpRequest, client: ClientInfo
    ) -> TokenResponse:
        """Verify the password or a second factor of the caller and record a fresh
        authentication in the caller's session: ``auth_time`` = now; a second factor
        raises the session to aal2 (``amr`` gains ``otp``, or ``hwk``/``swk`` for a passkey,
        and ``mfa``; a passkey without user verification only after a password or a code,
        see :func:`_second_factor_reaches_aal2`); the password keeps
        the session's level (a single factor may re-authenticate an AAL2 session, NIST SP
        800-63B §7.2). Answers a new pair for the same session; its earlier unused refresh
        token stops working.

        Raises:
            StepUpFailed: 401 ``invalid_credentials``, wrong password (counted).
            InvalidOtp: 401, wrong or replayed code (counted).
            UnsupportedMethod: 400, a code for an account without MFA.
            LoginThrottled: 429, too many failures on the account or address.
            InvalidToken: 401, the session has ended.
        """
        user = await UserRepository(self.db).get_caller(principal.user_id)
        session = await SessionRepository(self.db).get_user_session(user.id, principal.session_id)
        if session is None or session.revoked_at is not None:
            raise InvalidToken("The session has ended; log in again.")
        member, value = body.factor()
        proof: Proof
        if member == "password":
            proof = await check_password(self.db, self.ctx, user, value, client)
            aal = session.aal
        else:
            if not await has_second_factor(self.db, user.id):
                raise UnsupportedMethod("The account has no second factor; use the password.")
            proof = await check_second_factor(self.db, self.ctx, user, member, value, client)
            await after_proof(self.db, self.ctx, user, proof)
            aal = 2 if _second_factor_reaches_aal2(session.amr, proof) else session.aal
        now = self.ctx.clock.now()
        assurance = Assurance.of(aal, merged_amr(session.amr, proof.amr, aal=aal), now)
        tokens = await SignIn(self.db, self.ctx).reauthenticate(user.id, session.id, assurance)
        await record(
            self.db,
            "auth.step_up",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details={"method": proof.method, "session_id": str(session.id), "acr": tokens.acr},
        )
        log.info("step_up", user_id=str(user.id), method=proof.method, acr=tokens.acr)
        return tokens
