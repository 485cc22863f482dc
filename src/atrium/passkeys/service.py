"""Registering and managing an account's passkeys (W3C WebAuthn Level 3 §7.1).

Registration is two requests: options (a single-use challenge of the account, stored in
the database so any node can finish the ceremony) and the credential, which must answer
that challenge from an accepted origin for this relying party. The credential id is
unique across accounts (the database's unique index decides). Adding a passkey is
audited (``passkey.added``) and emailed to the owner.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.assurance import has_second_factor
from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.mail.service import Outbox
from atrium.mfa.factors import FactorService
from atrium.models import Passkey, User, WebAuthnChallenge
from atrium.passkeys.exceptions import (
    InvalidChallenge,
    PasskeyExists,
    PasskeyLimitReached,
    PasskeyNotFound,
    PasskeyRegistrationFailed,
)
from atrium.passkeys.relying_party import CeremonyFailed, RelyingParty, client_challenge
from atrium.passkeys.repository import PasskeyRepository
from atrium.passkeys.schemas import PasskeyRead
from atrium.users.exceptions import UserNotFound

log = structlog.get_logger(__name__)

REGISTRATION = "registration"


def passkey_read(passkey: Passkey) -> PasskeyRead:
    return PasskeyRead(
        id=passkey.id,
        name=passkey.name,
        created_at=passkey.created_at,
        last_used_at=passkey.last_used_at,
        backed_up=passkey.backed_up,
        device_type=passkey.device_type,
        transports=[str(t) for t in passkey.transports],
    )


def user_handle_of(user_id: uuid.UUID) -> bytes:
    """The account's WebAuthn user handle (§5.4.3): its id's 16 random bytes, no
    personal data."""
    return user_id.bytes


async def new_challenge(
    repo: PasskeyRepository, ctx: AppContext, purpose: str, user_id: uuid.UUID | None
) -> WebAuthnChallenge:
    """Store a fresh 32-byte challenge of ``purpose`` (§13.4.3: at least 16 random bytes)
    valid for ``webauthn.challenge_ttl_seconds``."""
    now = ctx.clock.now()
    challenge = WebAuthnChallenge(
        id=uuid.uuid4(),
        purpose=purpose,
        challenge=secrets.token_bytes(32),
        user_id=user_id,
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.settings.webauthn.challenge_ttl_seconds),
    )
    await repo.add_challenge(challenge, now)
    return challenge


class PasskeyService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = PasskeyRepository(db)
        self.rp = RelyingParty.from_settings(ctx.settings)

    async def _user(self, user_id: uuid.UUID) -> User:
        user = await self.db.get(User, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        return user

    async def registration_options(self, user_id: uuid.UUID) -> dict[str, object]:
        """Creation options for a new passkey of ``user_id``, excluding the ones it has.

        Raises:
            PasskeyLimitReached: 409, the account has ``webauthn.max_per_user`` passkeys.
        """
        user = await self._user(user_id)
        existing = await self.repo.list_of(user.id)
        if len(existing) >= self.ctx.settings.webauthn.max_per_user:
            raise PasskeyLimitReached(
                f"An account holds at most {self.ctx.settings.webauthn.max_per_user} passkeys."
            )
        challenge = await new_challenge(self.repo, self.ctx, REGISTRATION, user.id)
        return self.rp.creation_options(
            challenge=challenge.challenge,
            user_handle=user_handle_of(user.id),
            user_name=user.email,
            display_name=user.full_name or user.email,
            exclude=[(p.credential_id, [str(t) for t in p.transports]) for p in existing],
        )

    async def register(self, principal: Principal, credential: object, name: str) -> PasskeyRead:
        """Verify and store a new passkey answering one of the account's registration
        challenges (which is spent, whatever the outcome). A passkey is a second factor
        (type ``webauthn``): the first one turns MFA on, revoking the account's other aal1
        sessions; every one revokes the trusted devices (:meth:`FactorService.passkey_added`).

        Raises:
            InvalidChallenge: 400, the credential answers no live challenge of the account.
            PasskeyRegistrationFailed: 400, wrong origin, RP id, type or structure.
            PasskeyExists: 409, the credential is already registered.
            PasskeyLimitReached: 409.
        """
        user = await self._user(principal.user_id)
        now = self.ctx.clock.now()
        value = client_challenge(credential)
        claimed = (
            await self.repo.claim_challenge(REGISTRATION, now, value=value, user_id=user.id)
            if value is not None
            else None
        )
        if claimed is None:
            raise InvalidChallenge("The credential answers no live registration challenge.")
        try:
            verified = self.rp.verify_registration(credential, claimed.challenge)
        except CeremonyFailed as exc:
            log.info("passkey_registration_refused", user_id=str(user.id), reason=str(exc))
            raise PasskeyRegistrationFailed(f"The credential was refused: {exc}") from exc
        if await self.repo.count_of(user.id) >= self.ctx.settings.webauthn.max_per_user:
            raise PasskeyLimitReached("The account holds the most passkeys it may.")
        transports = []
        if isinstance(credential, dict) and isinstance(credential.get("response"), dict):
            raw = credential["response"].get("transports")
            transports = [str(t) for t in raw][:8] if isinstance(raw, list) else []
        passkey = Passkey(
            id=uuid.uuid4(),
            user_id=user.id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            user_handle=user_handle_of(user.id),
            name=name,
            aaguid=str(verified.aaguid),
            transports=transports,
            backed_up=bool(verified.credential_backed_up),
            device_type=str(verified.credential_device_type.value),
            created_at=now,
        )
        first = not await has_second_factor(self.db, user.id)
        if not await self.repo.add(passkey):
            raise PasskeyExists("This passkey is already registered.")
        await FactorService(self.db, self.ctx).passkey_added(
            user, principal.session_id, passkey.id, first
        )
        await record(
            self.db,
            "passkey.added",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details={"passkey_id": str(passkey.id), "name": name, "aaguid": passkey.aaguid},
        )
        outbox = Outbox(self.db, self.ctx.clock, self.ctx.settings.mail.default_locale)
        await outbox.enqueue(
            "passkey_added",
            to=user.email,
            locale=user.locale,
            context={"name": name},
            user_id=user.id,
        )
        return passkey_read(passkey)

    async def list_of(self, user_id: uuid.UUID) -> list[PasskeyRead]:
        return [passkey_read(p) for p in await self.repo.list_of(user_id)]

    async def rename(self, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str) -> PasskeyRead:
        """Raises PasskeyNotFound (404): no such passkey of the account."""
        passkey = await self.repo.get_own(user_id, passkey_id)
        if passkey is None:
            raise PasskeyNotFound("No such passkey.")
        before = passkey.name
        passkey.name = name
        await self.db.flush()
        await record(
            self.db,
            "passkey.renamed",
            at=self.ctx.clock.now(),
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            before={"name": before},
            after={"name": name},
            details={"passkey_id": str(passkey.id)},
        )
        return passkey_read(passkey)

    async def remove(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> None:
        """Delete a passkey: it can no longer sign in. Audited (``passkey.removed`` and
        ``mfa.factor_removed``) and emailed; the last factor turns MFA off
        (:meth:`FactorService.factor_gone`).

        Raises:
            PasskeyNotFound: 404, no such passkey of the account.
        """
        passkey = await self.repo.delete_own(user_id, passkey_id)
        if passkey is None:
            raise PasskeyNotFound("No such passkey.")
        await record(
            self.db,
            "passkey.removed",
            at=self.ctx.clock.now(),
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"passkey_id": str(passkey.id), "name": passkey.name},
        )
        user = await self._user(user_id)
        await FactorService(self.db, self.ctx).factor_gone(
            user, passkey.id, passkey.name, "webauthn"
        )
