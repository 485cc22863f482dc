"""The rules of authentication: registration, login, refresh-token rotation, logout.

Refresh tokens are 256-bit random values (``secrets.token_urlsafe(32)``), stored only as
their SHA-256 digest — with that much entropy a fast hash is enough (no brute force can
reach a preimage). Every refresh rotates the token; presenting a used one is treated as
theft and revokes the whole session, the token family (OAuth 2.0 Security BCP, RFC 9700
§4.14.2).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import ACTOR_ANONYMOUS, record
from atrium.auth.bruteforce import LoginThrottle, subject_key
from atrium.auth.exceptions import (
    InvalidCredentials,
    InvalidEmail,
    InvalidRefreshToken,
    RefreshTokenReused,
)
from atrium.auth.password_policy import check_password
from atrium.auth.principal import Principal
from atrium.auth.repository import SessionRepository
from atrium.auth.schemas import TokenResponse
from atrium.context import AppContext
from atrium.core import metrics
from atrium.models import AuthSession, RefreshToken, User, UserStatus
from atrium.rbac.permissions import USER
from atrium.rbac.repository import RoleRepository
from atrium.users.email import normalize_email
from atrium.users.repository import UserRepository
from atrium.verification.service import AccountEmailService

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ClientInfo:
    """Who is asking: shown to the user in their session list."""

    ip_address: str | None
    user_agent: str | None


def hash_refresh_token(raw: str) -> bytes:
    """SHA-256 digest of a refresh token, as stored."""
    return hashlib.sha256(raw.encode()).digest()


def new_refresh_token() -> str:
    """256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def _login_failure(user: User | None, password_ok: bool) -> str | None:
    """Why a login fails (for the audit trail only), or None when it succeeds."""
    if user is None:
        return "unknown_email"
    if not password_ok:
        return "wrong_password"
    if user.deleted_at is not None:
        return "account_deleted"
    if user.status != UserStatus.active.value:
        return "account_suspended"
    return None


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
        check_password(password, email=normalized.address, settings=self.settings)
        password_hash = await self.ctx.hasher.hash(password)
        now = self.ctx.clock.now()
        user = User(
            id=uuid.uuid4(),
            email=normalized.address,
            email_normalized=normalized.key,
            password_hash=password_hash,
            status=UserStatus.active.value,
            created_at=now,
            updated_at=now,
            locale=locale,
        )
        await self.users.add(user)
        await RoleRepository(self.db).grant_builtin(user.id, USER, now)
        await record(
            self.db,
            "user.registered",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )
        metrics.REGISTRATIONS.inc()
        await AccountEmailService(self.db, self.ctx).send_verification(user)
        log.info("user_registered", user_id=str(user.id))
        return user

    async def login(self, email: str, password: str, client: ClientInfo) -> TokenResponse:
        """Check the password and open a session.

        An unknown email verifies against a dummy hash, so it costs the same as a wrong
        password and answers the same error (OWASP Authentication Cheat Sheet). A bcrypt
        or weaker argon2 hash is replaced by a current argon2id hash on success.

        Every attempt leaves an audit event; a failure's ``details.reason`` is one of
        ``unknown_email``, ``wrong_password``, ``account_suspended``, ``account_deleted``
        (the client sees the same answer for all of them).

        Raises:
            InvalidCredentials: 401, wrong email or password, or an inactive or deleted
                account (the failure's audit event is committed nonetheless).
        """
        try:
            key = normalize_email(email).key
        except InvalidEmail:
            key = None
        throttle = LoginThrottle(self.ctx)
        account = subject_key(key or email.strip().casefold())
        ip = client.ip_address or "unknown"
        await throttle.check(account, ip)
        user = await self.users.get_by_email_key(key) if key else None
        ok, upgraded_hash = await self.ctx.hasher.verify(
            password, user.password_hash if user else None
        )
        now = self.ctx.clock.now()
        reason = _login_failure(user, ok)
        if reason is not None:
            metrics.LOGINS.labels("failure").inc()
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
            if await throttle.failed(account, ip) and user is not None:
                await self._notify_throttled(user, now, client)
            raise InvalidCredentials("The email or password is incorrect.")
        assert user is not None
        await throttle.succeeded(account)
        await self.users.record_login(user.id, now, upgraded_hash)
        tokens = await self._open_session(user.id, now, client)
        await record(
            self.db,
            "auth.login_succeeded",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )
        metrics.LOGINS.labels("success").inc()
        log.info("login_succeeded", user_id=str(user.id), upgraded=upgraded_hash is not None)
        return tokens

    async def _notify_throttled(self, user: User, now: datetime, client: ClientInfo) -> None:
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

    async def _open_session(
        self, user_id: uuid.UUID, now: datetime, client: ClientInfo
    ) -> TokenResponse:
        session = AuthSession(
            id=uuid.uuid4(),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_absolute_ttl_seconds),
            user_agent=(client.user_agent or "")[:512] or None,
            ip_address=client.ip_address,
        )
        raw = new_refresh_token()
        await self.sessions.create_session(
            session,
            RefreshToken(
                id=uuid.uuid4(),
                session_id=session.id,
                token_hash=hash_refresh_token(raw),
                created_at=now,
            ),
        )
        return self._token_response(user_id, session.id, raw, now)

    def _token_response(
        self, user_id: uuid.UUID, session_id: uuid.UUID, refresh_token: str, now: datetime
    ) -> TokenResponse:
        return TokenResponse(
            access_token=self.ctx.tokens.issue(user_id=user_id, session_id=session_id, now=now),
            refresh_token=refresh_token,
            expires_in=self.ctx.tokens.ttl_seconds,
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
        return self._token_response(user.id, session.id, raw, now)

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        """Revoke the caller's session (and the one of ``refresh_token``, if it is theirs)."""
        now = self.ctx.clock.now()
        session_ids = [principal.session_id]
        if refresh_token:
            row = await self.sessions.get_refresh_token(hash_refresh_token(refresh_token))
            if row is not None and row[1].user_id == principal.user_id:
                session_ids.append(row[1].id)
        await self._revoke(session_ids, now, "logout")
        await record(
            self.db,
            "auth.logout",
            at=now,
            actor_id=principal.user_id,
            target_type="user",
            target_id=principal.user_id,
            details={"session_ids": [str(s) for s in dict.fromkeys(session_ids)]},
        )

    async def _revoke(self, session_ids: list[uuid.UUID], now: datetime, reason: str) -> None:
        for sid in dict.fromkeys(session_ids):
            await self.sessions.revoke_session(sid, now, reason)
        self.ctx.principals.revoke_on_commit(self.db, session_ids)
