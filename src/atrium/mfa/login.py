"""The second step of a login: ``POST /auth/mfa/verify`` (Supabase's factor → challenge →
verify; OWASP MFA Cheat Sheet).

The ``mfa_token`` of the ``mfa_required`` answer is looked up by its digest and must be
unused, unexpired and presented by the client it was issued to (address and user agent);
otherwise 401 ``invalid_mfa_token``, the same for every case. The proof is checked by the
verifier of its member (``verifiers.VERIFIERS``: ``code``, ``recovery_code``, and
``webauthn`` registered by the passkeys domain) under the account's login throttle, so
wrong codes count with wrong passwords. Only then is the token spent, by a conditional
UPDATE (of two concurrent verifications one wins). The session opens at aal2 with the
methods of both steps.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.assurance import client_digest
from atrium.auth.signin import SignIn
from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.core.opaque import new_token, token_digest
from atrium.core.tokens import Assurance
from atrium.errors import AppError
from atrium.mfa.exceptions import InvalidMfaToken, UnsupportedMethod
from atrium.mfa.guard import check_second_factor
from atrium.mfa.notices import Notices
from atrium.mfa.repository import MfaRepository
from atrium.mfa.schemas import MfaTokenResponse, MfaVerifyRequest
from atrium.mfa.stepup import after_proof, merged_amr
from atrium.models import MfaChallenge, TrustedDevice, User, UserStatus
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)

# RFC 8176 methods of a passkey: a login whose first step was a passkey takes another kind
# of second factor (a passkey is not the second factor of itself).
PASSKEY_AMR = frozenset({"hwk", "swk"})


class MfaLoginService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = MfaRepository(db)

    async def verify(self, body: MfaVerifyRequest, client: ClientInfo) -> MfaTokenResponse:
        """Complete a login with a second factor; the pair at aal2, and a
        ``device_token`` when ``remember_device`` is true.

        Raises:
            InvalidMfaToken: 401, unknown, used, expired or another client's token.
            InvalidOtp: 401, wrong, expired or replayed code or recovery code, or a passkey
                assertion that does not verify (counted).
            UnsupportedMethod: 400, a passkey after a passkey sign-in, or a member without
                a verifier.
            LoginThrottled: 429.
        """
        now = self.ctx.clock.now()
        challenge, user = await self.pending(body.mfa_token, client)
        member, value = body.factor()
        if member == "webauthn" and PASSKEY_AMR.intersection(challenge.amr):
            raise UnsupportedMethod("A passkey sign-in needs another kind of second factor.")
        try:
            proof = await check_second_factor(self.db, self.ctx, user, member, value, client)
        except AppError:
            self.ctx.activity.login("mfa", False, user.id, now)
            raise
        if not await self.repo.consume_challenge(challenge.id, now):
            raise InvalidMfaToken("The MFA token was already used; log in again.")
        await after_proof(self.db, self.ctx, user, proof)
        assurance = Assurance.of(2, merged_amr(challenge.amr, proof.amr, aal=2), now)
        tokens = await SignIn(self.db, self.ctx).finish_login(
            user, client, assurance, details={"method": proof.method}
        )
        log.info("login_succeeded", user_id=str(user.id), method=proof.method)
        device_token = await self._remember(user, client) if body.remember_device else None
        return MfaTokenResponse(**tokens.model_dump(), device_token=device_token)

    async def pending(self, mfa_token: str, client: ClientInfo) -> tuple[MfaChallenge, User]:
        """The live login challenge of ``mfa_token`` and its account.

        Raises:
            InvalidMfaToken: 401, unknown, used, expired or another client's token, or the
                account is no longer active.
        """
        now = self.ctx.clock.now()
        challenge = await self.repo.challenge(token_digest(mfa_token))
        if (
            challenge is None
            or challenge.used_at is not None
            or challenge.expires_at <= now
            or challenge.client_hash != client_digest(client)
        ):
            raise InvalidMfaToken("The MFA token is invalid or expired; log in again.")
        user = await UserRepository(self.db).get(challenge.user_id)
        if user is None or user.deleted_at is not None or user.status != UserStatus.active.value:
            raise InvalidMfaToken("The MFA token is invalid or expired; log in again.")
        return challenge, user

    async def _remember(self, user: User, client: ClientInfo) -> str:
        raw = new_token()
        now = self.ctx.clock.now()
        device = TrustedDevice(
            id=uuid.uuid4(),
            user_id=user.id,
            token_hash=token_digest(raw),
            created_at=now,
            expires_at=now + timedelta(days=self.ctx.settings.mfa.trusted_device_ttl_days),
            user_agent=client.user_agent,
            ip_address=client.ip_address,
        )
        await self.repo.add(device)
        await Notices(self.db, self.ctx).trusted_device_added(
            user, device.id, client.user_agent or "unknown device", now
        )
        return raw
