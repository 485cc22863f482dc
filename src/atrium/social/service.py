"""Social login as the routes and pages use it: start a flow, finish it, exchange a
login code, and the caller's own identities (list, link, unlink)."""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from atrium.audit.service import record
from atrium.auth.exceptions import MfaRequired
from atrium.auth.schemas import TokenResponse
from atrium.auth.service import AuthService
from atrium.context import AppContext
from atrium.core.client import ClientInfo
from atrium.core.cookies import cookie_name
from atrium.core.opaque import new_token, token_digest
from atrium.core.passwords import has_usable_password
from atrium.errors import AppError
from atrium.models import UserIdentity
from atrium.social import flow
from atrium.social.exceptions import (
    IdentityNotFound,
    InvalidLoginCode,
    InvalidRedirect,
    LastLoginMethod,
)
from atrium.social.linking import LinkingService
from atrium.social.providers import Provider, get_provider
from atrium.social.repository import IdentityRepository, TicketRepository
from atrium.users.repository import UserRepository

BINDING_COOKIE = "atrium_oauth"
LINK_COOKIE = "atrium_link_pending"
LOGIN_CODE_TTL_SECONDS = 60
LINK_PAGE = "/login/link"
MFA_PAGE = "/login/mfa"
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def binding_of(request: Request, *, create: bool = True) -> str:
    """The browser's binding secret (cookie), or a new one when it has none."""
    raw = request.cookies.get(cookie_name(request, BINDING_COOKIE))
    if raw and 32 <= len(raw) <= 128:
        return raw
    return new_token() if create else ""


@dataclass
class CallbackResult:
    """Where the browser goes, and the cookies to set on the way."""

    location: str
    session_token: str | None = None
    link_ticket: str | None = None
    mfa_token: str | None = None
    mfa_token_ttl: int = 0


def _local_path(target: str) -> bool:
    return (
        target.startswith("/")
        and not target.startswith("//")
        and not any(ord(c) < 32 or c == "\\" for c in target)
    )


class SocialService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx

    def _intent(
        self, redirect_to: str | None, code_challenge: str | None, link_user_id: str | None
    ) -> flow.FlowIntent:
        """Validate ``redirect_to``: a path of Atrium's own, or exactly one of
        ``social.app_redirect_uris`` with an S256 ``code_challenge`` (RFC 9700 §4.1.3:
        exact string matching).

        Raises:
            InvalidRedirect: 400.
        """
        target = redirect_to or self.ctx.settings.ui.default_redirect
        if _local_path(target):
            return flow.FlowIntent(target, None, link_user_id)
        if target not in self.ctx.settings.social.app_redirect_uris:
            raise InvalidRedirect("redirect_to is neither a local path nor an allowed app URI.")
        if link_user_id is None and (
            code_challenge is None or not _CHALLENGE.match(code_challenge)
        ):
            raise InvalidRedirect("An app's redirect_to needs a PKCE S256 code_challenge.")
        return flow.FlowIntent(target, code_challenge, link_user_id)

    async def begin(
        self,
        provider: Provider,
        redirect_to: str | None,
        code_challenge: str | None,
        *,
        link_user_id: uuid.UUID | None,
        binding: str,
    ) -> str:
        """The provider's authorization URL for a new flow of this browser.

        Raises:
            InvalidRedirect: 400. ProviderUnavailable: 502.
        """
        intent = self._intent(
            redirect_to, code_challenge, str(link_user_id) if link_user_id else None
        )
        return await flow.begin(self.db, self.ctx, provider, intent, binding)

    async def callback(
        self,
        provider_id: str,
        params: dict[str, str],
        binding: str,
        client: ClientInfo,
        replaced_session: str | None = None,
    ) -> CallbackResult:
        """Finish a flow: validate the response, apply the linking rules, and sign in.

        An account with MFA is not signed in by the provider alone (the provider's login
        is the first factor, ``amr`` ``fed``): a hosted-pages flow goes on to the second
        step (``/login/mfa?next=<redirect_to>``, with the ``mfa_token`` to keep in the
        browser's ``__Host-atrium_mfa`` cookie), and an app's ``login_code`` answers
        ``mfa_required`` when it is exchanged — as after a password. A session that the
        hosted pages open replaces the browser's earlier one (``replaced_session``, the
        refresh token of its cookie), which is revoked.

        Raises: the errors of :func:`atrium.social.flow.complete` and
            :meth:`atrium.social.linking.LinkingService.resolve`.
        """
        try:
            ext, payload = await flow.complete(
                self.db, self.ctx, provider_id, params, binding or None
            )
        except AppError:
            self.ctx.activity.login("social", False, None, self.ctx.clock.now())
            raise
        provider = await get_provider(self.db, self.ctx.settings, provider_id)
        outcome = await LinkingService(self.db, self.ctx).resolve(provider, ext, payload)
        target: str = payload["redirect_to"]
        if outcome.kind == "linked":
            return CallbackResult(target)
        if outcome.kind == "confirm":
            return CallbackResult(LINK_PAGE, link_ticket=outcome.link_ticket)
        method = f"social:{provider.id}"
        if payload.get("code_challenge"):
            code = await self.issue_login_code(outcome.user.id, payload["code_challenge"], method)
            return CallbackResult(with_query(target, login_code=code))
        try:
            tokens = await AuthService(self.db, self.ctx).sign_in_verified(
                outcome.user, client, method
            )
        except MfaRequired as step:  # the challenge is kept: this request commits
            return CallbackResult(
                with_query(MFA_PAGE, next=target),
                mfa_token=str(step.extensions["mfa_token"]),
                mfa_token_ttl=int(str(step.extensions["expires_in"])),
            )
        if replaced_session:
            await AuthService(self.db, self.ctx).end_replaced_session(replaced_session)
        return CallbackResult(target, session_token=tokens.refresh_token)

    async def issue_login_code(self, user_id: uuid.UUID, challenge: str, method: str) -> str:
        """A single-use login code (60 s) bound to the app's PKCE challenge."""
        code = new_token()
        await TicketRepository(self.db).add(
            "login_code",
            token_digest(code),
            {"user_id": str(user_id), "code_challenge": challenge, "method": method},
            self.ctx.clock.now(),
            LOGIN_CODE_TTL_SECONDS,
        )
        return code

    async def exchange(self, login_code: str, verifier: str, client: ClientInfo) -> TokenResponse:
        """Tokens for a login code and the verifier of its challenge (RFC 7636 §4.6).

        Raises:
            InvalidLoginCode: 400, unknown, used, expired, or the verifier does not match.
            AccountSuspended: 403. InvalidCredentials: 401 (deleted account).
        """
        payload = await TicketRepository(self.db).use(
            "login_code", token_digest(login_code), self.ctx.clock.now()
        )
        if payload is None or not hmac.compare_digest(
            create_s256_code_challenge(verifier), payload["code_challenge"]
        ):
            raise InvalidLoginCode("The login code is unknown, used, expired or not yours.")
        user = await UserRepository(self.db).get(uuid.UUID(payload["user_id"]))
        if user is None:
            raise InvalidLoginCode("The login code's account no longer exists.")
        return await AuthService(self.db, self.ctx).sign_in_verified(
            user, client, payload["method"]
        )

    # --- the caller's identities ------------------------------------------------------------

    async def identities(self, user_id: uuid.UUID) -> tuple[Sequence[UserIdentity], bool]:
        """The caller's linked identities and whether the account has a password."""
        user = await UserRepository(self.db).get_caller(user_id)
        return await IdentityRepository(self.db).of_user(user_id), has_usable_password(
            user.password_hash
        )

    async def unlink(self, user_id: uuid.UUID, identity_id: uuid.UUID) -> None:
        """Remove one of the caller's identities.

        Raises:
            IdentityNotFound: 404, not one of the caller's.
            LastLoginMethod: 409, the account has no password and no other identity.
        """
        identities = IdentityRepository(self.db)
        await identities.lock_owner(user_id)
        user = await UserRepository(self.db).get_caller(user_id)
        owned = {i.id: i for i in await identities.of_user(user_id)}
        identity = owned.get(identity_id)
        if identity is None:
            raise IdentityNotFound("No such identity on your account.")
        if len(owned) == 1 and not has_usable_password(user.password_hash):
            raise LastLoginMethod(
                "This is the only way to sign in to the account: set a password first."
            )
        await identities.delete(identity_id, user_id)
        await record(
            self.db,
            "social.identity_unlinked",
            at=self.ctx.clock.now(),
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"provider": identity.provider, "identity_id": str(identity_id)},
        )


def with_query(target: str, **params: str) -> str:
    separator = "&" if urlsplit(target).query else "?"
    return f"{target}{separator}{urlencode(params)}"
