"""Deletion of an account by its owner, with a grace period (GDPR art. 17).

``DELETE /api/v1/users/me`` (step-up, password) calls :meth:`DeletionService.schedule`:

- at once, every session is revoked, every API key revoked, every trusted device
  forgotten, and the account is hidden (``deleted_at`` set: it is no longer found by
  others — profiles, lists, sign-in — exactly as a soft-deleted account);
- ``deletion_due_at = now + privacy.deletion_grace_days``; the owner is emailed a link
  that cancels the deletion (a single-use token valid for the whole grace period);
- signing in during the grace period with the right password answers only
  ``account_deletion_pending`` with a short-lived cancel token (API), or the cancel page
  (hosted login);
- when the grace period ends the ``privacy.erase_due`` job erases the account
  (:mod:`atrium.account.erasure`); with a grace period of 0 it is erased in the request.

:meth:`DeletionService.cancel` (``POST /api/v1/auth/deletion/cancel``, the hosted
``/cancel-deletion`` page) restores the account as it was, minus the revoked sessions and
keys.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.account.erasure import erase_accounts
from atrium.audit.service import record
from atrium.auth.principal import Principal
from atrium.auth.repository import SessionRepository
from atrium.context import AppContext
from atrium.events.service import emit
from atrium.mail.service import Outbox
from atrium.models import ApiKey, EmailTokenPurpose, TrustedDevice, User
from atrium.profiles.cache import forget_profiles
from atrium.verification.deletion import CANCEL_PAGE, claim_cancel_token, issue_cancel_token
from atrium.verification.exceptions import InvalidEmailToken
from atrium.verification.repository import EmailTokenRepository

log = structlog.get_logger(__name__)


class DeletionService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx

    async def schedule(self, principal: Principal, user: User) -> datetime | None:
        """Schedule ``user``'s deletion (password and last-superadmin checks done by the
        caller). Returns when it will be erased, or None when it was erased at once
        (``privacy.deletion_grace_days`` = 0)."""
        now = self.ctx.clock.now()
        grace = self.ctx.settings.privacy.deletion_grace_days
        sessions = SessionRepository(self.db)
        revoked = await sessions.revoke_user_sessions(
            user.id, now, "account_deleted", actor=user.id
        )
        self.ctx.principals.revoke_on_commit(self.db, revoked)
        self.ctx.principals.distrust_api_keys_on_commit(self.db, [user.id])
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        await forget_profiles(self.db, self.ctx, user.username)
        keys = await self.db.execute(
            update(ApiKey)
            .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="account_deleted")
            .execution_options(synchronize_session=False)
        )
        await self.db.execute(delete(TrustedDevice).where(TrustedDevice.user_id == user.id))
        if grace == 0:
            await erase_accounts(
                self.db,
                self.ctx.storage,
                [user.id],
                now=now,
                avatar_sizes=self.ctx.settings.avatars.sizes,
                actor_id=user.id,
            )
            log.info("account_erased", user_id=str(user.id), grace_days=0)
            return None
        due = now + timedelta(days=grace)
        user.deleted_at = now
        user.deletion_requested_at = now
        user.deletion_due_at = due
        user.updated_at = now
        await self.db.flush()
        details = {
            "due_at": due.isoformat(),
            "sessions_revoked": len(revoked),
            "api_keys_revoked": int(getattr(keys, "rowcount", 0) or 0),
        }
        await record(
            self.db,
            "user.deletion_requested",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details=details,
        )
        await emit(
            self.db,
            "user.deletion_scheduled",
            subject=user.id,
            actor=user.id,
            data={"due_at": due},
            at=now,
        )
        await self._email(user, due, now, grace)
        log.info("account_deletion_scheduled", user_id=str(user.id), due_at=due.isoformat())
        return due

    async def _email(self, user: User, due: datetime, now: datetime, grace_days: int) -> None:
        """The confirmation, with the cancel link (its token lasts the grace period). A
        link with a token is queued by its flow, never from an event."""
        raw = await issue_cancel_token(self.db, user, now, grace_days * 86400)
        base = self.ctx.settings.mail.link_base_url.rstrip("/")
        await Outbox(self.db, self.ctx.clock, self.ctx.settings.mail.default_locale).enqueue(
            "notification",
            to=user.email,
            locale=user.locale,
            context={
                "title": "Your account will be deleted",
                "body": (
                    f"You asked for the deletion of your account. It will be erased for "
                    f"good on {due:%Y-%m-%d %H:%M} UTC, with all its data. Every session "
                    f"and API key has been revoked. Changed your mind? Open this link "
                    f"before then to keep your account."
                ),
                "link": base + CANCEL_PAGE.format(token=raw),
            },
            user_id=user.id,
        )

    async def cancel(self, token: str) -> uuid.UUID:
        """Cancel a scheduled deletion with its token (emailed, or given at sign-in); the
        account is visible and can sign in again. Audited, ``user.deletion_cancelled``.

        Raises:
            InvalidEmailToken: 400, the token is unknown, used, expired, or the account is
                not scheduled for deletion (any more).
        """
        now = self.ctx.clock.now()
        user_id = await claim_cancel_token(self.db, token, now)
        user = await self.db.get(User, user_id) if user_id else None
        if user is None or user.deletion_due_at is None:
            raise InvalidEmailToken("The link is invalid, expired or already used.")
        user.deleted_at = None
        user.deletion_requested_at = None
        user.deletion_due_at = None
        user.updated_at = now
        await self.db.flush()
        await EmailTokenRepository(self.db).discard_unused(
            user.id, EmailTokenPurpose.cancel_deletion.value
        )
        self.ctx.principals.forget_users_on_commit(self.db, [user.id])
        await forget_profiles(self.db, self.ctx, user.username)
        await record(
            self.db,
            "user.deletion_cancelled",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )
        await emit(self.db, "user.deletion_cancelled", subject=user.id, actor=user.id, at=now)
        log.info("account_deletion_cancelled", user_id=str(user.id))
        return user.id
