"""Atrium's linking rules: which account an external identity signs in to.

1. An identity already linked (same ``iss`` + ``sub``) signs in to its account.
2. While signed in (``link_user_id``), the identity is attached to the caller's account
   (409 ``identity_linked_elsewhere`` if another account holds it).
3. No account has the provider's email: a new account is created with it, verified only
   if the provider is trusted for it (``trust_email_verified``) and says
   ``email_verified: true``; otherwise the usual verification email is sent.
4. An account has that email: it is linked automatically only if the provider is trusted,
   says the email is verified **and** the local email is verified. Otherwise a ``link``
   ticket is made and the owner must prove the account (password, and MFA when enabled)
   on the link-confirmation page. An unverified email, on either side, never links.

Every link and unlink is an audit event; a link emails the account's owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.exceptions import AccountSuspended, EmailTaken, InvalidEmail
from atrium.context import AppContext
from atrium.core.opaque import new_token, token_digest
from atrium.core.passwords import UNUSABLE_PASSWORD
from atrium.models import User, UserIdentity, UserStatus
from atrium.social.exceptions import (
    IdentityLinkedElsewhere,
    InvalidLinkTicket,
    ProviderEmailMissing,
)
from atrium.social.identity import ExternalIdentity
from atrium.social.providers import Provider
from atrium.social.repository import IdentityRepository, TicketRepository
from atrium.users.accounts import create_account
from atrium.users.email import normalize_email
from atrium.users.exceptions import UserNotFound
from atrium.users.repository import UserRepository
from atrium.verification.service import AccountEmailService

log = structlog.get_logger(__name__)

LINK_TTL_SECONDS = 600


@dataclass
class Outcome:
    """``login``: sign ``user`` in; ``linked``: the signed-in owner linked an identity;
    ``confirm``: the owner of ``user`` must confirm the link with ``link_ticket``."""

    kind: str
    user: User
    created: bool = False
    link_ticket: str | None = None


class LinkingService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.users = UserRepository(db)
        self.identities = IdentityRepository(db)
        self.tickets = TicketRepository(db)

    async def resolve(
        self, provider: Provider, ext: ExternalIdentity, flow: dict[str, Any]
    ) -> Outcome:
        """Apply the rules above to an authenticated external identity.

        Raises:
            IdentityLinkedElsewhere: 409, linking an identity another account holds.
            ProviderEmailMissing: 422, an unknown identity without a usable email.
            AccountSuspended: 403; EmailTaken: 409 (the email's account is deleted).
        """
        now = self.ctx.clock.now()
        existing = await self.identities.find(ext.issuer, ext.subject)
        if flow.get("link_user_id"):
            owner = await self._active(uuid.UUID(flow["link_user_id"]))
            if existing is not None:
                if existing.user_id != owner.id:
                    raise IdentityLinkedElsewhere("This identity is linked to another account.")
                return Outcome("linked", owner)
            await self.attach(owner, ext, how="signed_in")
            return Outcome("linked", owner)
        if existing is not None:
            user = await self._active(existing.user_id)
            await self.identities.touch(existing.id, now, ext.email)
            return Outcome("login", user)
        if ext.email is None:
            raise ProviderEmailMissing("The provider gave no email address for this account.")
        try:
            email = normalize_email(ext.email)
        except InvalidEmail as exc:
            raise ProviderEmailMissing("The provider's email address is not valid.") from exc
        provider_verified = provider.trust_email_verified and ext.email_verified
        local = await self.users.get_by_email_key(email.key)
        if local is None:
            user = await create_account(
                self.db,
                email,
                UNUSABLE_PASSWORD,
                now,
                email_verified_at=now if provider_verified else None,
            )
            if ext.name:
                user.full_name = ext.name[:200]
            if ext.picture and self.ctx.settings.social.import_avatars:
                await TicketRepository(self.db).queue_avatar_import(user.id, ext.picture, now)
            await record(
                self.db,
                "user.registered",
                at=now,
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                details={"method": f"social:{provider.id}"},
            )
            if not provider_verified:
                await AccountEmailService(self.db, self.ctx).send_verification(user)
            await self.attach(user, ext, how="new_account", notify=False)
            return Outcome("login", user, created=True)
        if local.deleted_at is not None:
            raise EmailTaken("This email belongs to a deleted account.")
        if local.status != UserStatus.active.value:
            raise AccountSuspended("The account is suspended; contact an administrator.")
        if provider_verified and local.email_verified_at is not None:
            await self.attach(local, ext, how="verified_email")
            return Outcome("login", local)
        ticket = new_token()
        await self.tickets.add(
            "link",
            token_digest(ticket),
            {
                "user_id": str(local.id),
                "provider": ext.provider,
                "issuer": ext.issuer,
                "subject": ext.subject,
                "email": ext.email,
                "redirect_to": flow.get("redirect_to"),
                "code_challenge": flow.get("code_challenge"),
            },
            now,
            LINK_TTL_SECONDS,
        )
        log.info("social_link_confirmation_required", user_id=str(local.id), provider=provider.id)
        return Outcome("confirm", local, link_ticket=ticket)

    async def _active(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None or user.deleted_at is not None:
            raise UserNotFound("The account no longer exists.")
        if user.status != UserStatus.active.value:
            raise AccountSuspended("The account is suspended; contact an administrator.")
        return user

    async def attach(
        self, user: User, ext: ExternalIdentity, *, how: str, notify: bool = True
    ) -> UserIdentity:
        """Link ``ext`` to ``user``, audit it (``social.identity_linked``, ``details.how``)
        and, with ``notify``, email the owner.

        Raises:
            IdentityLinkedElsewhere: 409, the unique index holds it for another account.
        """
        now = self.ctx.clock.now()
        identity = UserIdentity(
            id=uuid.uuid4(),
            user_id=user.id,
            provider=ext.provider,
            issuer=ext.issuer,
            subject=ext.subject,
            email=ext.email,
            created_at=now,
            last_login_at=now,
        )
        if not await self.identities.add(identity):
            raise IdentityLinkedElsewhere("This identity is linked to another account.")
        await record(
            self.db,
            "social.identity_linked",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details={"provider": ext.provider, "identity_id": str(identity.id), "how": how},
        )
        if notify:
            await AccountEmailService(self.db, self.ctx).notify_identity_linked(user, ext.provider)
        log.info("social_identity_linked", user_id=str(user.id), provider=ext.provider, how=how)
        return identity

    async def pending_link(self, ticket: str) -> dict[str, Any]:
        """The pending link of ``ticket`` (for the confirmation page), not used.

        Raises:
            InvalidLinkTicket: 400, unknown, used or expired.
        """
        payload = await self.tickets.peek("link", token_digest(ticket), self.ctx.clock.now())
        if payload is None:
            raise InvalidLinkTicket("The link confirmation has expired; sign in again.")
        return payload

    async def confirm_link(self, ticket: str, user: User) -> dict[str, Any]:
        """Attach the pending identity once ``user`` (the ticket's account) has proven
        itself; the ticket is used once.

        Raises:
            InvalidLinkTicket: 400, unknown, used, expired or of another account.
            IdentityLinkedElsewhere: 409.
        """
        payload = await self.tickets.use("link", token_digest(ticket), self.ctx.clock.now())
        if payload is None or payload["user_id"] != str(user.id):
            raise InvalidLinkTicket("The link confirmation has expired; sign in again.")
        ext = ExternalIdentity(
            provider=payload["provider"],
            issuer=payload["issuer"],
            subject=payload["subject"],
            email=payload.get("email"),
            email_verified=False,
        )
        await self.attach(user, ext, how="confirmed_password")
        return payload
