"""The caller's trusted devices (``remember_device``): list and revoke."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.mfa.exceptions import TrustedDeviceNotFound
from atrium.mfa.notices import Notices
from atrium.mfa.repository import MfaRepository
from atrium.mfa.schemas import TrustedDeviceRead
from atrium.users.repository import UserRepository


class DeviceService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = MfaRepository(db)

    async def list(self, principal: Principal) -> list[TrustedDeviceRead]:
        """The caller's unexpired trusted devices, newest first."""
        devices = await self.repo.trusted_devices_of(principal.user_id, self.ctx.clock.now())
        return [
            TrustedDeviceRead(
                id=d.id,
                created_at=d.created_at,
                expires_at=d.expires_at,
                last_used_at=d.last_used_at,
                user_agent=d.user_agent,
                ip_address=d.ip_address,
            )
            for d in devices
        ]

    async def revoke(self, principal: Principal, device_id: uuid.UUID) -> None:
        """Stop trusting one of the caller's devices (its next login asks the second
        factor again).

        Raises:
            TrustedDeviceNotFound: 404, not a device of the caller.
        """
        if not await self.repo.delete_trusted_device(principal.user_id, device_id):
            raise TrustedDeviceNotFound("No such trusted device.")
        user = await UserRepository(self.db).get_caller(principal.user_id)
        await Notices(self.db, self.ctx).trusted_device_removed(
            user, device_id, self.ctx.clock.now()
        )
