"""Signing in with a passkey, without a password (W3C WebAuthn Level 3 §7.2).

``options`` stores a single-use challenge and answers request options: with an email,
``allowCredentials`` lists the account's passkeys (an unknown email, or one without
passkeys, gets one made-up credential id derived from the email with a server secret, so
the answer does not tell whether the account exists); without, the list is empty and the
authenticator offers the discoverable credentials it holds for this relying party.

``login`` spends the challenge (whatever the outcome), finds the passkey by its credential
id, checks the assertion (origin, RP id hash, challenge, signature), then moves the
signature counter by a conditional UPDATE: a counter that does not grow (a cloned
authenticator, §6.1.1) or a concurrent use of the same counter value is refused. The
session it opens states how the user authenticated (RFC 8176 ``amr``): ``hwk`` for a
device-bound credential, ``swk`` for a synced one (its key also lives in software), and
``user`` when the authenticator verified the user (PIN, biometrics), which makes the
passkey a multi-factor authenticator (NIST SP 800-63B §5.1.8: AAL2).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import ACTOR_ANONYMOUS, record
from atrium.auth.schemas import TokenResponse
from atrium.auth.service import AuthService
from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.passkeys.exceptions import InvalidChallenge, InvalidPasskey
from atrium.passkeys.relying_party import (
    CeremonyFailed,
    RelyingParty,
    credential_id,
    user_handle,
)
from atrium.passkeys.repository import PasskeyRepository
from atrium.passkeys.schemas import RequestOptions
from atrium.passkeys.service import new_challenge
from atrium.users.email import normalize_email
from atrium.users.exceptions import InvalidEmail
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)

AUTHENTICATION = "authentication"


def passkey_amr(device_type: str, user_verified: bool) -> list[str]:
    """RFC 8176 methods of a passkey sign-in: ``swk`` for a synced (multi-device)
    credential, ``hwk`` for a device-bound one, and ``user`` when the user was verified."""
    amr = ["swk" if device_type == "multi_device" else "hwk"]
    if user_verified:
        amr.append("user")
    return amr


class PasskeyLogin:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = PasskeyRepository(db)
        self.rp = RelyingParty.from_settings(ctx.settings)

    def _decoy(self, email_key: str) -> bytes:
        secret = self.ctx.settings.api_keys.secret_bytes()
        return hmac.new(secret, b"passkey-decoy:" + email_key.encode(), hashlib.sha256).digest()

    async def options(self, email: str | None) -> RequestOptions:
        """A sign-in challenge and its request options (see the module docstring)."""
        allow: list[tuple[bytes, list[str]]] = []
        user_id: uuid.UUID | None = None
        if email is not None:
            try:
                key = normalize_email(email).key
            except InvalidEmail:
                key = email.strip().casefold()
            user = await UserRepository(self.db).get_by_email_key(key)
            passkeys = await self.repo.list_of(user.id) if user is not None else []
            if user is not None and passkeys:
                user_id = user.id
                allow = [(p.credential_id, [str(t) for t in p.transports]) for p in passkeys]
            else:
                allow = [(self._decoy(key), ["internal", "hybrid"])]
        challenge = await new_challenge(self.repo, self.ctx, AUTHENTICATION, user_id)
        return RequestOptions(
            challenge_id=challenge.id,
            public_key=self.rp.request_options(challenge=challenge.challenge, allow=allow),
        )

    async def login(
        self, challenge_id: uuid.UUID, credential: object, client: ClientInfo
    ) -> TokenResponse:
        """Verify the assertion for the challenge and open a session.

        Raises:
            InvalidChallenge: 400, unknown, expired or already used challenge.
            InvalidPasskey: 401, unknown credential, a passkey of another account than the
                one the options were for, wrong origin, RP id, signature or user handle,
                a signature counter that did not grow (committed: the challenge stays spent).
            AccountSuspended: 403, the account is suspended.
        """
        now = self.ctx.clock.now()
        claimed = await self.repo.claim_challenge(AUTHENTICATION, now, challenge_id=challenge_id)
        if claimed is None:
            raise InvalidChallenge("The challenge is unknown, expired or already used.")
        raw_id = credential_id(credential)
        found = await self.repo.with_owner(raw_id) if raw_id is not None else None
        if found is None:
            log.info("passkey_login_refused", reason="unknown_credential")
            raise InvalidPasskey("The passkey could not be verified.")
        passkey, user = found
        handle = user_handle(credential)
        try:
            if claimed.user_id is not None and claimed.user_id != user.id:
                raise CeremonyFailed("a passkey of another account than the options'")
            if handle is not None and handle != passkey.user_handle:
                raise CeremonyFailed("the user handle is not the passkey's")
            verified = self.rp.verify_assertion(
                credential, claimed.challenge, passkey.public_key, passkey.sign_count
            )
            if not await self.repo.record_use(
                passkey.id, passkey.sign_count, verified.new_sign_count, now
            ):
                raise CeremonyFailed("the signature counter moved meanwhile")
        except CeremonyFailed as exc:
            log.info("passkey_login_refused", user_id=str(user.id), reason=str(exc))
            self.ctx.activity.login("passkey", False, user.id, now)
            await record(
                self.db,
                "auth.login_failed",
                at=now,
                actor_id=None,
                actor_type=ACTOR_ANONYMOUS,
                target_type="user",
                target_id=user.id,
                details={"method": "passkey", "reason": str(exc)[:200]},
            )
            raise InvalidPasskey("The passkey could not be verified.") from exc
        amr = passkey_amr(passkey.device_type, verified.user_verified)
        # With user verification a passkey is two factors (possession and the user's
        # PIN or biometric): aal2 (NIST SP 800-63B §4.2, multi-factor cryptographic).
        return await AuthService(self.db, self.ctx).sign_in_verified(
            user,
            client,
            "passkey:" + "+".join(amr),
            amr,
            2 if verified.user_verified else 1,
            exclude_factor_types=frozenset({"webauthn"}),
        )
