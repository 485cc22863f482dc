"""A passkey as a second factor (W3C WebAuthn Level 3 §7.2; NIST SP 800-63B §5.1.8):
after a password at login (``POST /auth/mfa/verify {mfa_token, webauthn}``) and to step up
inside a session (``POST /auth/step-up {webauthn}``).

Request options come from :class:`SecondFactorOptions` (purpose ``mfa`` challenges of one
account, listing its passkeys in ``allowCredentials``). The assertion is checked by
:class:`WebAuthnVerifier`, registered in the MFA domain's verifiers under the member
``webauthn``, so it runs under the same per-account login throttle as TOTP codes and a
failure is counted and audited the same way. The verifier spends the challenge it answers
(found by the value in ``clientDataJSON``, of this account, purpose ``mfa``; one DELETE),
checks origin, RP id, signature and user presence, and moves the signature counter by a
conditional UPDATE (a counter that does not grow is refused, §6.1.1). The proof's RFC 8176
methods are ``hwk`` (device-bound) or ``swk`` (synced), plus ``user`` when the
authenticator verified the user; with the password before it the session is aal2 whether
or not the user was verified (something known and something held).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.mfa.login import MfaLoginService
from atrium.mfa.verifiers import Proof, register_verifier
from atrium.models import User
from atrium.passkeys.exceptions import NoPasskey
from atrium.passkeys.login import passkey_amr
from atrium.passkeys.relying_party import (
    CeremonyFailed,
    RelyingParty,
    client_challenge,
    credential_id,
    user_handle,
)
from atrium.passkeys.repository import PasskeyRepository
from atrium.passkeys.schemas import RequestOptions
from atrium.passkeys.service import new_challenge

log = structlog.get_logger(__name__)

SECOND_FACTOR = "mfa"


class WebAuthnVerifier:
    """The ``webauthn`` member: an assertion of one of the account's passkeys for a live
    ``mfa`` challenge of the account (see the module docstring). None for any failure."""

    member = "webauthn"

    async def verify(
        self, db: AsyncSession, ctx: AppContext, user: User, value: Any, now: datetime
    ) -> Proof | None:
        repo = PasskeyRepository(db)
        challenge = client_challenge(value)
        claimed = (
            await repo.claim_challenge(SECOND_FACTOR, now, value=challenge, user_id=user.id)
            if challenge is not None
            else None
        )
        raw_id = credential_id(value)
        if claimed is None or raw_id is None:
            log.info("passkey_factor_refused", user_id=str(user.id), reason="no_challenge")
            return None
        found = await repo.with_owner(raw_id)
        if found is None or found[1].id != user.id:
            log.info("passkey_factor_refused", user_id=str(user.id), reason="not_a_passkey")
            return None
        passkey = found[0]
        handle = user_handle(value)
        try:
            if handle is not None and handle != passkey.user_handle:
                raise CeremonyFailed("the user handle is not the passkey's")
            verified = RelyingParty.from_settings(ctx.settings).verify_assertion(
                value, claimed.challenge, passkey.public_key, passkey.sign_count
            )
            if not await repo.record_use(
                passkey.id, passkey.sign_count, verified.new_sign_count, now
            ):
                raise CeremonyFailed("the signature counter moved meanwhile")
        except CeremonyFailed as exc:
            log.info("passkey_factor_refused", user_id=str(user.id), reason=str(exc))
            return None
        amr = passkey_amr(passkey.device_type, verified.user_verified)
        return Proof(method="webauthn", amr=tuple(amr), factor_id=passkey.id)


register_verifier(WebAuthnVerifier())


class SecondFactorOptions:
    """Request options for a passkey as the second factor of one account."""

    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = PasskeyRepository(db)

    async def for_user(self, user_id: uuid.UUID) -> RequestOptions:
        """A single-use ``mfa`` challenge of ``user_id`` and request options listing its
        passkeys.

        Raises:
            NoPasskey: 409, the account has no passkey.
        """
        passkeys = await self.repo.list_of(user_id)
        if not passkeys:
            raise NoPasskey("The account has no passkey; use another factor.")
        challenge = await new_challenge(self.repo, self.ctx, SECOND_FACTOR, user_id)
        rp = RelyingParty.from_settings(self.ctx.settings)
        allow = [(p.credential_id, [str(t) for t in p.transports]) for p in passkeys]
        return RequestOptions(
            challenge_id=challenge.id,
            public_key=rp.request_options(challenge=challenge.challenge, allow=allow),
        )

    async def for_login(self, mfa_token: str, client: ClientInfo) -> RequestOptions:
        """Options for the pending login of ``mfa_token`` (the token is not spent: the
        assertion goes to ``POST /auth/mfa/verify``).

        Raises:
            InvalidMfaToken: 401, unknown, used, expired or another client's token.
            NoPasskey: 409, the account has no passkey.
        """
        _, user = await MfaLoginService(self.db, self.ctx).pending(mfa_token, client)
        return await self.for_user(user.id)
