"""The rules of the account email flows.

Tokens: 256 random bits (``secrets.token_urlsafe(32)``), stored only as their SHA-256
digest (like refresh tokens: with that much entropy a fast hash suffices), single use
(claimed with one conditional ``UPDATE``), bound to a purpose (a reset token never
verifies an email) and to the address the link was sent to. Lifetimes: 24 h for
verification and email change, 15 min for password reset (settings; OWASP Forgot
Password Cheat Sheet). Every message is an outbox row in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core.db import unit_of_work
from atrium.core.opaque import new_token, token_digest
from atrium.events.service import emit
from atrium.mail.service import Outbox
from atrium.models import EmailToken, EmailTokenPurpose, User, UserStatus
from atrium.users.email import normalize_email
from atrium.users.exceptions import EmailTaken, IncorrectPassword, InvalidEmail
from atrium.users.password_policy import check_password
from atrium.users.repository import UserRepository
from atrium.verification.exceptions import EmailUnchanged, InvalidEmailToken
from atrium.verification.repository import EmailTokenRepository

log = structlog.get_logger(__name__)

# Identifies no account: used so that a request for an unknown email does the same
# database work as one for a known email.
_NOBODY = uuid.UUID(int=0)


def _email_key(email: str) -> str | None:
    try:
        return normalize_email(email).key
    except InvalidEmail:
        return None


async def limit_forgot_password(ctx: AppContext, email: str) -> None:
    """Count a forgot-password request against ``rate_limit.forgot_password``, per submitted
    address (normalised when valid), known or not.

    Raises:
        RateLimited: 429, past the limit for this address.
    """
    key = _email_key(email)
    await ctx.ratelimiter.hit(
        "forgot_password", hashlib.sha256((key or email.casefold()).encode()).hexdigest()
    )


async def send_password_reset(ctx: AppContext, email: str) -> None:
    """Run after the answer to ``POST /auth/password/forgot`` has been sent: look the
    account up and queue its reset link in a transaction of its own.

    The request answers before any of this, so a known and an unknown address take the
    same path until the response (only the rate limit), and the timing of the answer
    says nothing about the account. The outbox row commits with the token, as everywhere:
    once committed the email is delivered. Failures are logged, never raised (the client
    has its answer already); the user can ask again.
    """
    try:
        async with unit_of_work(ctx.sessionmaker) as db:
            await AccountEmailService(db, ctx).queue_password_reset(email)
    except Exception:
        log.exception("password_reset_request_failed")


def _may_reset(user: User) -> bool:
    """Only an active account that is not (soft-)deleted may reset its password."""
    return user.status == UserStatus.active.value and user.deleted_at is None


def hash_email_token(raw: str) -> bytes:
    """SHA-256 digest of an emailed token, as stored."""
    return token_digest(raw)


class AccountEmailService:
    """Verification, password reset and email change over one unit of work."""

    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.auth = ctx.settings.auth
        self.mail = ctx.settings.mail
        self.users = UserRepository(db)
        self.tokens = EmailTokenRepository(db)
        self.outbox = Outbox(db, ctx.clock, ctx.settings.mail.default_locale)

    # --- helpers -----------------------------------------------------------------------

    def _link(self, path_template: str, raw: str) -> str:
        return self.mail.link_base_url.rstrip("/") + path_template.format(token=raw)

    async def _new_token(
        self, user_id: uuid.UUID, purpose: EmailTokenPurpose, email: str, ttl_seconds: int
    ) -> str:
        raw = new_token()
        now = self.ctx.clock.now()
        await self.tokens.add(
            EmailToken(
                id=uuid.uuid4(),
                user_id=user_id,
                purpose=purpose.value,
                token_hash=hash_email_token(raw),
                email=email,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
            )
        )
        return raw

    async def _claim(self, raw: str, purpose: EmailTokenPurpose, now: datetime) -> tuple[User, str]:
        claimed = (
            await self.tokens.claim(hash_email_token(raw), purpose.value, now) if raw else None
        )
        user = await self.users.get(claimed[0]) if claimed else None
        if claimed is None or user is None:
            raise InvalidEmailToken("The link is invalid, expired or already used.")
        return user, claimed[1]

    async def _queue(self, template: str, user: User, to: str, context: dict[str, Any]) -> None:
        await self.outbox.enqueue(
            template, to=to, locale=user.locale, context=context, user_id=user.id
        )

    # --- verification ------------------------------------------------------------------

    async def send_verification(self, user: User) -> None:
        """Queue a verification link for ``user``'s current address."""
        ttl = self.auth.email_verification_ttl_seconds
        raw = await self._new_token(user.id, EmailTokenPurpose.verify_email, user.email, ttl)
        await self._queue(
            "verify_email",
            user,
            user.email,
            {"link": self._link(self.mail.verify_email_path, raw), "hours": ttl // 3600},
        )

    async def verify_email(self, raw: str) -> None:
        """Mark the account of a verification token verified.

        Raises:
            InvalidEmailToken: 400 ``invalid_token``: unknown, used, expired, not a
                verification token, or the account's address changed since it was sent.
        """
        now = self.ctx.clock.now()
        user, email = await self._claim(raw, EmailTokenPurpose.verify_email, now)
        if normalize_email(email).key != user.email_normalized:
            raise InvalidEmailToken("The link is for an address the account no longer has.")
        if user.email_verified_at is None:
            user.email_verified_at = now
            user.updated_at = now
            await self.db.flush()
            await emit(
                self.db,
                "user.email_verified",
                subject=user.id,
                actor=user.id,
                data={"email": user.email},
                at=now,
            )
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        log.info("email_verified", user_id=str(user.id))

    async def resend_verification(self, user_id: uuid.UUID) -> None:
        """Queue a new verification link (nothing when already verified).

        Raises:
            RateLimited: 429, past ``rate_limit.resend_verification`` for this account.
        """
        await self.ctx.ratelimiter.hit("resend_verification", str(user_id))
        user = await self.users.get_caller(user_id)
        if user.email_verified_at is None:
            await self.send_verification(user)

    # --- password reset ----------------------------------------------------------------

    async def forgot_password(self, email: str) -> None:
        """Queue a reset link when an active, not deleted account has ``email``; otherwise
        nothing.

        The same work is done either way — a token is generated and hashed and older
        reset tokens are discarded (of no account, for an unknown email) — so the answer
        and its timing do not tell whether the account exists (OWASP Forgot Password
        Cheat Sheet). A new request invalidates the account's older reset tokens.

        Raises:
            RateLimited: 429, past ``rate_limit.forgot_password`` for this address
                (counted per submitted address, known or not, so it reveals nothing; it
                stops anyone from flooding a mailbox with reset emails).
        """
        await limit_forgot_password(self.ctx, email)
        await self.queue_password_reset(email)

    async def queue_password_reset(self, email: str) -> None:
        """The work of :meth:`forgot_password` after its rate limit: look the account up,
        discard its older reset tokens and queue a new link (nothing for an unknown,
        inactive or deleted account)."""
        key = _email_key(email)
        user = await self.users.get_by_email_key(key) if key else None
        if user is not None and not _may_reset(user):
            user = None
        await self.tokens.discard_unused(
            user.id if user else _NOBODY, EmailTokenPurpose.reset_password.value
        )
        if user is None:
            hash_email_token(new_token())
            log.info("password_reset_requested", known=False)
            return
        ttl = self.auth.password_reset_ttl_seconds
        raw = await self._new_token(user.id, EmailTokenPurpose.reset_password, user.email, ttl)
        await self._queue(
            "reset_password",
            user,
            user.email,
            {"link": self._link(self.mail.reset_password_path, raw), "minutes": ttl // 60},
        )
        log.info("password_reset_requested", known=True, user_id=str(user.id))

    async def reset_password(self, raw: str, new_password: str) -> None:
        """Set a new password with a reset token; every session of the account is revoked
        and a "password changed" notice is queued. Receiving the link proves control of
        the address, so an unverified address becomes verified.

        Raises:
            InvalidEmailToken: 400 ``invalid_token``, also when the account was deleted or
                suspended since the link was sent.
            WeakPassword: 422, the registration policy; the token stays usable (the
                transaction, including its claim, is rolled back).
        """
        now = self.ctx.clock.now()
        user, email = await self._claim(raw, EmailTokenPurpose.reset_password, now)
        if normalize_email(email).key != user.email_normalized:
            raise InvalidEmailToken("The link is for an address the account no longer has.")
        if not _may_reset(user):
            # Deleted or suspended since the link was sent: a reset must not be a way back.
            raise InvalidEmailToken("The link is invalid, expired or already used.")
        check_password(new_password, email=user.email, settings=self.auth, field="new_password")
        user.password_hash = await self.ctx.hasher.hash(new_password)
        user.updated_at = now
        if user.email_verified_at is None:
            user.email_verified_at = now
        await self.db.flush()
        revoked = await self.users.revoke_sessions([user.id], now, "password_reset", actor=user.id)
        await emit(self.db, "password.reset", subject=user.id, actor=user.id, at=now)
        self.ctx.principals.revoke_on_commit(self.db, revoked)
        # A reset proves only the mailbox: trusted devices must pass the second factor again.
        await self.users.revoke_trusted_devices(user.id)
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        # The "password changed" notice follows from the password.reset event
        # (atrium.notifications.consumer).
        log.info("password_reset", user_id=str(user.id), sessions_revoked=len(revoked))

    async def notify_login_throttled(self, user: User) -> None:
        """Queue the notice that failed logins on the account are now being slowed down."""
        await self._queue("login_throttled", user, user.email, {})

    async def notify_identity_linked(self, user: User, provider: str) -> None:
        """Queue the notice that a social-login identity of ``provider`` was linked."""
        await self._queue("identity_linked", user, user.email, {"provider": provider})

    # --- email change ------------------------------------------------------------------

    async def request_email_change(self, user_id: uuid.UUID, new_email: str, password: str) -> None:
        """Send a confirmation link to ``new_email`` and a notice to the current address.
        Nothing changes until the link is used. A newer request replaces older links.

        Raises:
            IncorrectPassword: 403.
            InvalidEmail: 422, not a valid address.
            EmailUnchanged: 422, it is already the account's address.
            EmailTaken: 409, another account has it (with enumeration-safe registration
                on, the answer is the same 202 and no link is sent).
        """
        user = await self.users.get_caller(user_id)
        ok, _ = await self.ctx.hasher.verify(password, user.password_hash)
        if not ok:
            raise IncorrectPassword("The password is incorrect.")
        target = normalize_email(new_email)
        if target.key == user.email_normalized:
            raise EmailUnchanged("This is already the account's email address.")
        taken = await self.users.get_by_email_key(target.key) is not None
        if taken and not self.auth.enumeration_safe_registration:
            raise EmailTaken("Another account already uses this email address.")
        await self.tokens.discard_unused(user.id, EmailTokenPurpose.change_email.value)
        if not taken:
            ttl = self.auth.email_change_ttl_seconds
            raw = await self._new_token(
                user.id, EmailTokenPurpose.change_email, target.address, ttl
            )
            await self._queue(
                "confirm_email_change",
                user,
                target.address,
                {
                    "link": self._link(self.mail.confirm_email_change_path, raw),
                    "hours": ttl // 3600,
                    "email": target.address,
                },
            )
        await self._queue("email_change_requested", user, user.email, {"new_email": target.address})
        log.info("email_change_requested", user_id=str(user.id))

    async def confirm_email_change(self, raw: str) -> None:
        """Apply an email change with its confirmation token; the new address is verified.

        Raises:
            InvalidEmailToken: 400 ``invalid_token``.
            EmailTaken: 409, the address was taken meanwhile (the token stays unused).
        """
        now = self.ctx.clock.now()
        user, email = await self._claim(raw, EmailTokenPurpose.change_email, now)
        target = normalize_email(email)
        previous = user.email
        await self.tokens.set_email(user, target.address, target.key, now)
        await emit(
            self.db,
            "user.email_changed",
            subject=user.id,
            actor=user.id,
            data={"email": target.address, "previous_email": previous},
            at=now,
        )
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        log.info("email_changed", user_id=str(user.id))

    # --- registration without enumeration ---------------------------------------------

    async def notify_registration_attempt(self, owner: User) -> None:
        """Queue the notice that someone tried to register the owner's address again
        (enumeration-safe registration; see :meth:`atrium.auth.service.AuthService.sign_up`)."""
        await self._queue("registration_attempt", owner, owner.email, {"email": owner.email})
