"""Opening sessions and answering token pairs: the end of every successful sign-in
(password, second factor, social, step-up) and of every refresh.

A pair states the session's assurance (``acr``, ``amr``, ``auth_time``); its access token
also carries ``mfa_enrol_by`` when a role of the account requires MFA and the account
has no factor (see :func:`atrium.auth.assurance.mfa_requirement`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.assurance import mfa_requirement, open_challenge, second_factors, trusted_device
from atrium.auth.browser_principal import session_store
from atrium.auth.exceptions import MfaRequired
from atrium.auth.repository import SessionRepository
from atrium.auth.schemas import TokenResponse
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.activity import login_method
from atrium.core.client import ClientInfo
from atrium.core.opaque import new_token, token_digest
from atrium.core.tokens import Assurance
from atrium.errors import InvalidToken
from atrium.events.service import emit
from atrium.models import AuthSession, RefreshToken, User
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)


class SignIn:
    """Sessions and pairs over one request's unit of work."""

    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.sessions = SessionRepository(db)

    async def require_second_factor(
        self,
        user: User,
        client: ClientInfo,
        amr: list[str],
        device_token: str | None,
        *,
        exclude_types: frozenset[str] = frozenset(),
    ) -> uuid.UUID | None:
        """After a first factor (``amr``): when the account has MFA, either a valid
        ``device_token`` of a trusted device lets the login through (its id is answered)
        or an ``mfa_token`` challenge is opened and :class:`MfaRequired` raised. None when
        the account has no MFA, or no factor outside ``exclude_types`` (a passkey sign-in
        excludes ``webauthn``: a passkey is never the second factor of itself).

        Raises:
            MfaRequired: 401 ``mfa_required`` with ``mfa_token``, ``expires_in`` and
                ``factors`` (``[{id, type}]``); the challenge is committed.
        """
        factors = [f for f in await second_factors(self.db, user.id) if f.type not in exclude_types]
        if not factors:
            return None
        device = await trusted_device(self.db, self.ctx, user.id, device_token)
        if device is not None:
            return device.id
        raw, _ = await open_challenge(self.db, self.ctx, user.id, client, amr)
        log.info("mfa_challenge_opened", user_id=str(user.id))
        raise MfaRequired(
            raw,
            self.ctx.settings.mfa.challenge_ttl_seconds,
            [{"id": str(f.id), "type": f.type} for f in factors],
        )

    async def finish_login(
        self,
        user: User,
        client: ClientInfo,
        assurance: Assurance,
        *,
        upgraded_hash: str | None = None,
        details: dict[str, object] | None = None,
    ) -> TokenResponse:
        """The bookkeeping of a successful login: last login (and an upgraded password
        hash), a new session at ``assurance``, the ``auth.login_succeeded`` event."""
        now = self.ctx.clock.now()
        await UserRepository(self.db).record_login(user.id, now, upgraded_hash)
        tokens = await self.open_session(user.id, now, client, assurance)
        await record(
            self.db,
            "auth.login_succeeded",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details=details,
        )
        metrics.LOGINS.labels("success").inc()
        self.ctx.activity.login(login_method(assurance.amr), True, user.id, now)
        return tokens

    async def open_session(
        self, user_id: uuid.UUID, now: datetime, client: ClientInfo, assurance: Assurance
    ) -> TokenResponse:
        """Open a session authenticated with ``assurance`` and answer its first pair."""
        session = AuthSession(
            id=uuid.uuid4(),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now
            + timedelta(seconds=self.ctx.settings.auth.refresh_token_absolute_ttl_seconds),
            user_agent=client.user_agent,
            ip_address=client.ip_address,
            aal=assurance.aal,
            amr=list(assurance.amr),
            auth_time=datetime.fromtimestamp(assurance.auth_time, UTC),
        )
        raw = new_token()
        await self.sessions.create_session(
            session,
            RefreshToken(
                id=uuid.uuid4(),
                session_id=session.id,
                token_hash=token_digest(raw),
                created_at=now,
            ),
        )
        await emit(
            self.db,
            "session.created",
            subject=session.id,
            actor=user_id,
            data={
                "user_id": user_id,
                "ip_address": client.ip_address,
                "user_agent": client.user_agent,
            },
            at=now,
        )
        return await self.token_response(user_id, session.id, raw, now, assurance)

    async def token_response(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        refresh_token: str,
        now: datetime,
        assurance: Assurance,
    ) -> TokenResponse:
        """The pair of a session: a new access token and ``refresh_token``."""
        requirement = await mfa_requirement(self.db, self.ctx, user_id)
        enrol_by = int(requirement.deadline.timestamp()) if requirement.deadline else None
        return TokenResponse(
            access_token=self.ctx.tokens.issue(
                user_id=user_id,
                session_id=session_id,
                now=now,
                assurance=assurance,
                mfa_enrol_by=enrol_by,
            ),
            refresh_token=refresh_token,
            expires_in=self.ctx.tokens.ttl_seconds,
            acr=assurance.acr,
            amr=list(assurance.amr),
            auth_time=assurance.auth_time,
        )

    async def reauthenticate(
        self, user_id: uuid.UUID, session_id: uuid.UUID, assurance: Assurance
    ) -> TokenResponse:
        """Record a fresh authentication in a live session and answer a new pair for it.

        The session takes ``assurance`` (the caller has checked that it is what was just
        proven); its refresh tokens not yet used are retired (presenting one afterwards
        answers ``invalid_refresh_token``), so the session keeps one live refresh token.
        Access tokens already issued keep the claims they were issued with.

        Raises:
            InvalidToken: 401, the session is no longer live.
        """
        now = self.ctx.clock.now()
        auth_time = datetime.fromtimestamp(assurance.auth_time, UTC)
        if not await self.sessions.set_assurance(
            session_id, user_id, now, assurance.aal, list(assurance.amr), auth_time
        ):
            raise InvalidToken("The session has ended; log in again.")
        raw = new_token()
        await self.sessions.retire_refresh_tokens(session_id)
        # A browser whose cookie holds a retired token is signed out, and its pages see the
        # new assurance, on every node at once.
        session_store(self.ctx).cookie_session_changed_on_commit(self.db, [session_id])
        await self.sessions.add_refresh_token(
            RefreshToken(
                id=uuid.uuid4(),
                session_id=session_id,
                token_hash=token_digest(raw),
                created_at=now,
            )
        )
        return await self.token_response(user_id, session_id, raw, now, assurance)
