"""The rules of authentication: registration, login, refresh-token rotation, logout.

Refresh tokens are 256-bit random values (``secrets.token_urlsafe(32)``), stored only as
their SHA-256 digest — with that much entropy a fast hash is enough (no brute force can
reach a preimage). Every refresh rotates the token; presenting a used one is treated as
theft and revokes the whole session, the token family (OAuth 2.0 Security BCP, RFC 9700
§4.14.2).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import ACTOR_ANONYMOUS, record
from atrium.auth.browser_principal import session_store
from atrium.auth.bruteforce import LoginThrottle, subject_key
from atrium.auth.exceptions import (
    AccountSuspended,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidRefreshToken,
    RefreshTokenReused,
)
from atrium.auth.login_outcome import login_failure
from atrium.auth.principal import Principal
from atrium.auth.repository import SessionRepository
from atrium.auth.schemas import TokenResponse
from atrium.auth.signin import SignIn
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.client import ClientInfo as ClientInfo
from atrium.core.opaque import new_token, token_digest
from atrium.core.tokens import Assurance
from atrium.events.service import emit
from atrium.models import RefreshToken, User, UserStatus
from atrium.users.accounts import create_account
from atrium.users.email import normalize_email
from atrium.users.password_policy import check_password
from atrium.users.repository import UserRepository
from atrium.verification.deletion import (
    SIGN_IN_TICKET_SECONDS,
    DeletionPending,
    issue_cancel_token,
)
from atrium.verification.service import AccountEmailService

log = structlog.get_logger(__name__)


def hash_refresh_token(raw: str) -> bytes:
    """SHA-256 digest of a refresh token, as stored."""
    return token_digest(raw)


def new_refresh_token() -> str:
    """256 random bits, URL-safe base64 (43 characters)."""
    return new_token()


class AuthService:
    """Registration, login, refresh and logout over one request's unit of work."""

    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.settings = ctx.settings.auth
        self.users = UserRepository(db)
        self.sessions = SessionRepository(db)

    async def register(self, email: str, password: str, locale: str | None = None) -> User:
        """Create an account and queue its verification email (same transaction).

        Raises:
            InvalidEmail: 422, the address is not valid.
            WeakPassword: 422, the password breaks the policy (NIST SP 800-63B §5.1.1.2).
            EmailTaken: 409, the (case-insensitive) address is already registered.
        """
        normalized = normalize_email(email)
        check_password(password, email=normalized.address, settings=self.settings, field="password")
        password_hash = await self.ctx.hasher.hash(password)
        now = self.ctx.clock.now()
        user = await create_account(self.db, normalized, password_hash, now, locale=locale)
        await record(
            self.db,
            "user.registered",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )
        await emit(
            self.db,
            "user.created",
            subject=user.id,
            actor=user.id,
            data={"email": user.email, "via": "registration"},
            at=now,
        )
        metrics.REGISTRATIONS.inc()
        await AccountEmailService(self.db, self.ctx).send_verification(user)
        log.info("user_registered", user_id=str(user.id))
        return user

    async def sign_up(self, email: str, password: str, locale: str | None = None) -> User | None:
        """Registration as configured: the new account, or None with
        ``auth.enumeration_safe_registration``, where an address that already has an account
        gets a notice to its owner instead of an error, and the caller answers the same 202
        either way (OWASP ASVS 5.0 6.3.8). Both paths hash the password, so both take
        comparable time.

        Raises:
            InvalidEmail, WeakPassword: 422 (they do not depend on the account existing).
            EmailTaken: 409, only without enumeration-safe registration.
        """
        if not self.settings.enumeration_safe_registration:
            return await self.register(email, password, locale=locale)
        try:
            async with self.db.begin_nested():
                await self.register(email, password, locale=locale)
        except EmailTaken:
            owner = await self.users.get_by_email_key(normalize_email(email).key)
            if owner is not None:
                await AccountEmailService(self.db, self.ctx).notify_registration_attempt(owner)
            log.info("registration_of_existing_email", user_id=str(owner.id) if owner else None)
        return None

    async def login(
        self, email: str, password: str, client: ClientInfo, device_token: str | None = None
    ) -> TokenResponse:
        """Check the password and open a session.

        An unknown email verifies against a dummy hash, so it costs the same as a wrong
        password and answers the same error (OWASP Authentication Cheat Sheet). A bcrypt
        or weaker argon2 hash is replaced by a current argon2id hash on success.

        Every attempt leaves an audit event; a failure's ``details.reason`` is one of
        ``unknown_email``, ``wrong_password``, ``account_suspended``, ``account_deleted``
        (the client sees the same answer for all of them).

        Raises:
            InvalidCredentials: 401, wrong email or password, or a deleted account (the
                failure's audit event is committed nonetheless).
            AccountSuspended: 403, the password is right but the account is suspended.
            MfaRequired: 401 ``mfa_required``, the password is right and the account has
                MFA (no valid ``device_token`` of a trusted device was given); the account's
                failure count is kept until the second factor succeeds.
        """
        try:
            key = normalize_email(email).key
        except InvalidEmail:
            key = None
        throttle = LoginThrottle(self.ctx)
        account = subject_key(key or email.strip().casefold())
        ip = client.ip_address or "unknown"
        await throttle.reserve(account, ip)
        try:
            return await self._judge_login(
                key, password, client, throttle, account, ip, device_token
            )
        finally:
            await throttle.release(account)

    async def _judge_login(
        self,
        key: str | None,
        password: str,
        client: ClientInfo,
        throttle: LoginThrottle,
        account: str,
        ip: str,
        device_token: str | None,
    ) -> TokenResponse:
        """Verify the password of a reserved attempt and record its outcome."""
        user = await self.users.get_by_email_key(key) if key else None
        ok, upgraded_hash = await self.ctx.hasher.verify(
            password, user.password_hash if user else None
        )
        now = self.ctx.clock.now()
        reason = login_failure(user, ok)
        if reason is not None:
            metrics.LOGINS.labels("failure").inc()
            self.ctx.activity.login("password", False, user.id if user else None, now)
            log.info("login_failed", user_id=str(user.id) if user else None, reason=reason)
            details: dict[str, object] = {"reason": reason}
            if user is None and key is not None:
                details["email"] = key
            await record(
                self.db,
                "auth.login_failed",
                at=now,
                actor_id=None,
                actor_type=ACTOR_ANONYMOUS,
                target_type="user" if user else None,
                target_id=user.id if user else None,
                details=details,
            )
            pending = reason == "deletion_pending"  # the right password: not a failure
            if not pending and await throttle.failed(account, ip) and user is not None:
                await self.notify_throttled(user, now, client)
            if reason == "account_suspended":
                raise AccountSuspended("The account is suspended; contact an administrator.")
            if reason == "deletion_pending" and user is not None and user.deletion_due_at:
                token = await issue_cancel_token(self.db, user, now, SIGN_IN_TICKET_SECONDS)
                raise DeletionPending(user.deletion_due_at, token)
            raise InvalidCredentials("The email or password is incorrect.")
        assert user is not None
        signin = SignIn(self.db, self.ctx)
        # With MFA the failures are not cleared yet: the second factor is still to come.
        device_id = await signin.require_second_factor(user, client, ["pwd"], device_token)
        await throttle.succeeded(account)
        tokens = await signin.finish_login(
            user,
            client,
            Assurance.of(1, ["pwd"], now),
            upgraded_hash=upgraded_hash,
            details={"trusted_device_id": str(device_id)} if device_id else None,
        )
        log.info("login_succeeded", user_id=str(user.id), upgraded=upgraded_hash is not None)
        return tokens

    async def sign_in_verified(
        self,
        user: User,
        client: ClientInfo,
        method: str,
        amr: list[str] | None = None,
        aal: int = 1,
        exclude_factor_types: frozenset[str] = frozenset(),
    ) -> TokenResponse:
        """Open a session for ``user``, already authenticated by other means than its
        password (``method``: ``social:<provider>``), with the same audit event and
        bookkeeping as a password login.

        The session states ``amr`` (default ``["fed"]``, an external identity provider)
        and ``aal``. Below aal2, an account with MFA still needs its second factor: this
        login counts as the first, and factors of ``exclude_factor_types`` are not offered
        (a passkey without user verification is not the second factor of itself). A
        passkey with user verification is aal2 by itself.

        Raises:
            AccountSuspended: 403, the account is suspended.
            InvalidCredentials: 401, the account is deleted.
            MfaRequired: 401 ``mfa_required``, the account has MFA.
        """
        now = self.ctx.clock.now()
        if user.deleted_at is not None:
            raise InvalidCredentials("The account no longer exists.")
        if user.status != UserStatus.active.value:
            raise AccountSuspended("The account is suspended; contact an administrator.")
        amr = amr or ["fed"]
        signin = SignIn(self.db, self.ctx)
        if aal < 2:
            await signin.require_second_factor(
                user, client, amr, None, exclude_types=exclude_factor_types
            )
        tokens = await signin.finish_login(
            user, client, Assurance.of(aal, amr, now), details={"method": method}
        )
        log.info("login_succeeded", user_id=str(user.id), method=method)
        return tokens

    async def notify_throttled(self, user: User, now: datetime, client: ClientInfo) -> None:
        """The account just reached the failed-login threshold: tell its owner (email) and
        the audit trail. Committed with the failure (InvalidCredentials preserves changes)."""
        log.warning("login_throttled", user_id=str(user.id))
        await AccountEmailService(self.db, self.ctx).notify_login_throttled(user)
        await record(
            self.db,
            "auth.login_throttled",
            at=now,
            actor_id=None,
            actor_type=ACTOR_ANONYMOUS,
            target_type="user",
            target_id=user.id,
            details={"threshold": self.ctx.settings.rate_limit.login_failures_per_account},
        )

    async def refresh(self, raw_token: str) -> TokenResponse:
        """Exchange a refresh token for a new pair; the old token stops working.

        Raises:
            InvalidRefreshToken: 401, unknown token, or its session is revoked, idle for
                longer than ``refresh_token_idle_ttl_seconds`` or past its absolute lifetime.
            RefreshTokenReused: 401, the token was already used; the session is revoked
                (committed even though the request fails).
        """
        now = self.ctx.clock.now()
        row = await self.sessions.get_refresh_token(hash_refresh_token(raw_token))
        if row is None:
            metrics.REFRESHES.labels("invalid").inc()
            raise InvalidRefreshToken("The refresh token is not valid.")
        token, session, user = row
        # A browser's cookie holding this token stops working (reuse revokes the session,
        # published strictly by the revocation).
        session_store(self.ctx).cookie_session_changed_on_commit(
            self.db, [session.id], strict=False
        )
        if token.used_at is not None or not await self.sessions.mark_refresh_token_used(
            token.id, now
        ):
            await self._revoke([session.id], now, "refresh_token_reused")
            metrics.REFRESHES.labels("reused").inc()
            log.warning("refresh_token_reuse_detected", session_id=str(session.id))
            await record(
                self.db,
                "auth.refresh_token_reused",
                at=now,
                actor_id=None,
                actor_type=ACTOR_ANONYMOUS,
                target_type="user",
                target_id=user.id,
                details={"session_id": str(session.id)},
            )
            raise RefreshTokenReused(
                "This refresh token was already used; the session has been revoked."
            )
        idle_limit = session.last_used_at + timedelta(
            seconds=self.settings.refresh_token_idle_ttl_seconds
        )
        if (
            session.revoked_at is not None
            or session.expires_at <= now
            or idle_limit <= now
            or user.status != UserStatus.active.value
            or user.deleted_at is not None
        ):
            metrics.REFRESHES.labels("expired").inc()
            raise InvalidRefreshToken("The session has ended; log in again.")
        raw = new_refresh_token()
        await self.sessions.add_refresh_token(
            RefreshToken(
                id=uuid.uuid4(),
                session_id=session.id,
                token_hash=hash_refresh_token(raw),
                created_at=now,
            )
        )
        await self.sessions.touch_session(session.id, now)
        metrics.REFRESHES.labels("success").inc()
        # Refreshing never raises the assurance: the new token states the session's.
        assurance = Assurance.of(session.aal, session.amr, session.auth_time)
        return await SignIn(self.db, self.ctx).token_response(
            user.id, session.id, raw, now, assurance
        )

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        """Revoke the caller's session (and the one of ``refresh_token``, if it is theirs)."""
        now = self.ctx.clock.now()
        session_ids = [principal.session_id]
        if refresh_token:
            row = await self.sessions.get_refresh_token(hash_refresh_token(refresh_token))
            if row is not None and row[1].user_id == principal.user_id:
                session_ids.append(row[1].id)
        await self._revoke(session_ids, now, "logout", principal.user_id)
        await record(
            self.db,
            "auth.logout",
            at=now,
            actor_id=principal.user_id,
            target_type="user",
            target_id=principal.user_id,
            details={"session_ids": [str(s) for s in dict.fromkeys(session_ids)]},
        )

    async def end_replaced_session(self, refresh_token: str) -> None:
        """Revoke the live session of ``refresh_token``, a browser's sign-in that a new one
        replaces (OWASP Session Management: renew at login), with ``auth.logout``."""
        row = await self.sessions.get_refresh_token(hash_refresh_token(refresh_token))
        if row is None or row[1].revoked_at is not None:
            return
        session, now = row[1], self.ctx.clock.now()
        await self._revoke([session.id], now, "logout", session.user_id)
        await record(
            self.db,
            "auth.logout",
            at=now,
            actor_id=session.user_id,
            target_type="user",
            target_id=session.user_id,
            details={"session_ids": [str(session.id)], "replaced_by": "new_sign_in"},
        )

    async def _revoke(
        self,
        session_ids: list[uuid.UUID],
        now: datetime,
        reason: str,
        actor: uuid.UUID | None = None,
    ) -> None:
        for sid in dict.fromkeys(session_ids):
            await self.sessions.revoke_session(sid, now, reason, actor=actor)
        self.ctx.principals.revoke_on_commit(self.db, session_ids)
