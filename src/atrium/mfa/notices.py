"""Every change of an account's second factors leaves an audit event and emails the owner
(OWASP MFA Cheat Sheet: notify the user of MFA changes), in the change's transaction
(the outbox)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.context import AppContext
from atrium.mail.service import Outbox
from atrium.models import User


class Notices:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.outbox = Outbox(db, ctx.clock, ctx.settings.mail.default_locale)

    async def _mail(self, template: str, user: User, **context: Any) -> None:
        await self.outbox.enqueue(
            template, to=user.email, locale=user.locale, context=context, user_id=user.id
        )

    async def _audit(
        self,
        action: str,
        user: User,
        now: datetime,
        details: dict[str, Any],
        actor_id: uuid.UUID | None = None,
    ) -> None:
        await record(
            self.db,
            action,
            at=now,
            actor_id=actor_id or user.id,
            target_type="user",
            target_id=user.id,
            details=details,
        )

    async def factor_added(
        self,
        user: User,
        factor_id: uuid.UUID,
        name: str,
        now: datetime,
        *,
        factor_type: str = "totp",
    ) -> None:
        """Audit ``mfa.factor_added``; email the owner, except for a passkey (``webauthn``),
        whose registration sends its own ``passkey_added`` email."""
        await self._audit(
            "mfa.factor_added", user, now, {"factor_id": str(factor_id), "type": factor_type}
        )
        if factor_type != "webauthn":
            await self._mail("mfa_factor_added", user, factor_name=name)

    async def factor_removed(
        self,
        user: User,
        factor_id: uuid.UUID,
        name: str,
        now: datetime,
        *,
        disabled: bool,
        factor_type: str = "totp",
    ) -> None:
        await self._audit(
            "mfa.factor_removed",
            user,
            now,
            {"factor_id": str(factor_id), "type": factor_type, "mfa_disabled": disabled},
        )
        await self._mail(
            "mfa_disabled" if disabled else "mfa_factor_removed", user, factor_name=name
        )

    async def recovery_codes_generated(self, user: User, now: datetime) -> None:
        await self._audit("mfa.recovery_codes_generated", user, now, {})
        await self._mail("mfa_recovery_codes_generated", user)

    async def recovery_code_used(self, user: User, remaining: int, now: datetime) -> None:
        await self._audit("mfa.recovery_code_used", user, now, {"remaining": remaining})
        await self._mail("mfa_recovery_code_used", user, remaining=remaining)

    async def trusted_device_added(
        self, user: User, device_id: uuid.UUID, device: str, now: datetime
    ) -> None:
        await self._audit("mfa.trusted_device_added", user, now, {"device_id": str(device_id)})
        await self._mail("mfa_trusted_device_added", user, device=device)

    async def trusted_device_removed(self, user: User, device_id: uuid.UUID, now: datetime) -> None:
        await self._audit("mfa.trusted_device_removed", user, now, {"device_id": str(device_id)})

    async def reset_by_admin(
        self, user: User, admin_id: uuid.UUID, factors: int, now: datetime
    ) -> None:
        await self._audit("admin.mfa_reset", user, now, {"factors": factors}, actor_id=admin_id)
        await self._mail("mfa_reset", user)
