"""Every query of the MFA domain: factors, recovery codes, login challenges, trusted
devices. Single-use and replay rules are conditional UPDATEs, atomic on SQLite and
PostgreSQL alike (the row changes only if it is still in the expected state)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import MfaChallenge, MfaFactor, MfaRecoveryCode, Passkey, TrustedDevice


class MfaRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    # --- factors ----------------------------------------------------------------------

    async def add(self, row: MfaFactor | MfaChallenge | TrustedDevice) -> None:
        self.db.add(row)
        await self.db.flush()

    async def factors_of(self, user_id: uuid.UUID) -> list[MfaFactor]:
        """Every factor of the account, pending ones included, oldest first."""
        rows = await self.db.execute(
            select(MfaFactor)
            .where(MfaFactor.user_id == user_id)
            .order_by(MfaFactor.created_at, MfaFactor.id)
        )
        return list(rows.scalars())

    async def factor_of(self, user_id: uuid.UUID, factor_id: uuid.UUID) -> MfaFactor | None:
        return (
            await self.db.execute(
                select(MfaFactor).where(MfaFactor.id == factor_id, MfaFactor.user_id == user_id)
            )
        ).scalar_one_or_none()

    async def accept_step(
        self, factor_id: uuid.UUID, step: int, now: datetime, *, verify: bool = False
    ) -> bool:
        """Record ``step`` as the factor's last accepted time step if it is newer than the
        stored one; False when it is not (a replayed or older code). ``verify`` also marks
        a pending factor verified."""
        values: dict[str, object] = {"last_used_step": step, "last_used_at": now}
        if verify:
            values["verified_at"] = func.coalesce(MfaFactor.verified_at, now)
        result = await self.db.execute(
            update(MfaFactor)
            .where(
                MfaFactor.id == factor_id,
                or_(MfaFactor.last_used_step.is_(None), MfaFactor.last_used_step < step),
            )
            .values(**values)
            .returning(MfaFactor.id)
        )
        return result.first() is not None

    async def delete_factors(self, user_id: uuid.UUID, factor_ids: Sequence[uuid.UUID]) -> None:
        await self.db.execute(
            delete(MfaFactor).where(MfaFactor.user_id == user_id, MfaFactor.id.in_(factor_ids))
        )

    async def delete_pending(self, user_id: uuid.UUID, factor_type: str) -> None:
        """Drop the account's pending factors of a type (an abandoned enrolment)."""
        await self.db.execute(
            delete(MfaFactor).where(
                MfaFactor.user_id == user_id,
                MfaFactor.type == factor_type,
                MfaFactor.verified_at.is_(None),
            )
        )

    # --- passkeys as factors (type ``webauthn``; the passkeys domain owns their ceremonies)

    async def passkeys_of(self, user_id: uuid.UUID) -> list[Passkey]:
        """The account's passkeys, oldest first."""
        rows = await self.db.execute(
            select(Passkey)
            .where(Passkey.user_id == user_id)
            .order_by(Passkey.created_at, Passkey.id)
        )
        return list(rows.scalars())

    async def delete_passkey(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
        """Delete one passkey of ``user_id``: it as it was, or None."""
        row = (
            await self.db.execute(
                delete(Passkey)
                .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
                .returning(Passkey.id, Passkey.name)
            )
        ).first()
        return Passkey(id=row[0], name=row[1], user_id=user_id) if row else None

    async def delete_passkeys(self, user_id: uuid.UUID) -> int:
        """Delete every passkey of ``user_id``; how many there were."""
        rows = await self.db.execute(
            delete(Passkey).where(Passkey.user_id == user_id).returning(Passkey.id)
        )
        return len(rows.all())

    # --- recovery codes -----------------------------------------------------------------

    async def replace_recovery_codes(
        self, user_id: uuid.UUID, hashes: Sequence[bytes], now: datetime
    ) -> None:
        await self.delete_recovery_codes(user_id)
        self.db.add_all(
            MfaRecoveryCode(id=uuid.uuid4(), user_id=user_id, code_hash=h, created_at=now)
            for h in hashes
        )
        await self.db.flush()

    async def delete_recovery_codes(self, user_id: uuid.UUID) -> None:
        await self.db.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: bytes, now: datetime) -> bool:
        """Spend one unused code with this digest; False when there is none (wrong or
        already used). One conditional UPDATE of at most one row: of concurrent uses of a
        code exactly one succeeds."""
        unused = (
            select(MfaRecoveryCode.id)
            .where(
                MfaRecoveryCode.user_id == user_id,
                MfaRecoveryCode.code_hash == code_hash,
                MfaRecoveryCode.used_at.is_(None),
            )
            .limit(1)
            .scalar_subquery()
        )
        result = await self.db.execute(
            update(MfaRecoveryCode)
            .where(MfaRecoveryCode.id == unused, MfaRecoveryCode.used_at.is_(None))
            .values(used_at=now)
            .returning(MfaRecoveryCode.id)
        )
        return result.first() is not None

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        return int(
            (
                await self.db.execute(
                    select(func.count())
                    .select_from(MfaRecoveryCode)
                    .where(MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))
                )
            ).scalar_one()
        )

    # --- login challenges ---------------------------------------------------------------

    async def challenge(self, token_hash: bytes) -> MfaChallenge | None:
        return (
            await self.db.execute(select(MfaChallenge).where(MfaChallenge.token_hash == token_hash))
        ).scalar_one_or_none()

    async def consume_challenge(self, challenge_id: uuid.UUID, now: datetime) -> bool:
        """Spend the challenge; False when another request already did."""
        result = await self.db.execute(
            update(MfaChallenge)
            .where(MfaChallenge.id == challenge_id, MfaChallenge.used_at.is_(None))
            .values(used_at=now)
            .returning(MfaChallenge.id)
        )
        return result.first() is not None

    async def delete_expired_challenges(self, user_id: uuid.UUID, now: datetime) -> None:
        await self.db.execute(
            delete(MfaChallenge).where(
                MfaChallenge.user_id == user_id, MfaChallenge.expires_at <= now
            )
        )

    # --- trusted devices ----------------------------------------------------------------

    async def trusted_device(
        self, user_id: uuid.UUID, token_hash: bytes, now: datetime
    ) -> TrustedDevice | None:
        return (
            await self.db.execute(
                select(TrustedDevice).where(
                    TrustedDevice.user_id == user_id,
                    TrustedDevice.token_hash == token_hash,
                    TrustedDevice.expires_at > now,
                )
            )
        ).scalar_one_or_none()

    async def trusted_devices_of(self, user_id: uuid.UUID, now: datetime) -> list[TrustedDevice]:
        rows = await self.db.execute(
            select(TrustedDevice)
            .where(TrustedDevice.user_id == user_id, TrustedDevice.expires_at > now)
            .order_by(TrustedDevice.created_at.desc(), TrustedDevice.id)
        )
        return list(rows.scalars())

    async def delete_trusted_device(self, user_id: uuid.UUID, device_id: uuid.UUID) -> bool:
        result = await self.db.execute(
            delete(TrustedDevice)
            .where(TrustedDevice.user_id == user_id, TrustedDevice.id == device_id)
            .returning(TrustedDevice.id)
        )
        return result.first() is not None

    async def touch_trusted_device(self, device_id: uuid.UUID, now: datetime) -> None:
        await self.db.execute(
            update(TrustedDevice).where(TrustedDevice.id == device_id).values(last_used_at=now)
        )
