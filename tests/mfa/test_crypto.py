"""TOTP secrets at rest: Fernet under MultiFernet, with key rotation."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from atrium.config import Settings
from atrium.context import AppContext
from atrium.mfa.crypto import SecretBox, SecretUnreadable, rotate_all
from atrium.models import MfaFactor
from tests.factories import insert_user


def box_of(settings: Settings, *keys: bytes) -> SecretBox:
    mfa = settings.mfa.model_copy(update={"encryption_keys": [SecretStr(k.decode()) for k in keys]})
    return SecretBox(settings.model_copy(update={"mfa": mfa}))


def test_secret_is_not_stored_in_clear_and_round_trips(settings: Settings) -> None:
    box = box_of(settings, Fernet.generate_key())

    token = box.encrypt("JBSWY3DPEHPK3PXP")

    assert "JBSWY3DPEHPK3PXP" not in token
    assert box.decrypt(token) == "JBSWY3DPEHPK3PXP"


def test_without_keys_the_key_derived_from_the_signing_key_is_stable(settings: Settings) -> None:
    token = SecretBox(settings).encrypt("JBSWY3DPEHPK3PXP")

    assert SecretBox(settings).decrypt(token) == "JBSWY3DPEHPK3PXP"


def test_a_secret_of_an_unknown_key_is_unreadable(settings: Settings) -> None:
    token = box_of(settings, Fernet.generate_key()).encrypt("JBSWY3DPEHPK3PXP")

    with pytest.raises(SecretUnreadable):
        box_of(settings, Fernet.generate_key()).decrypt(token)


async def test_rotation_re_encrypts_every_secret_under_the_first_key(
    ctx: AppContext, settings: Settings
) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    user_id = await insert_user(ctx)
    async with ctx.sessionmaker() as db:
        db.add(
            MfaFactor(
                id=uuid.uuid4(),
                user_id=user_id,
                type="totp",
                name="Phone",
                secret_encrypted=box_of(settings, old).encrypt("JBSWY3DPEHPK3PXP"),
                created_at=ctx.clock.now(),
            )
        )
        await db.commit()

    async with ctx.sessionmaker() as db:
        assert await rotate_all(db, box_of(settings, new, old)) == 1
        await db.commit()

    async with ctx.sessionmaker() as db:
        stored = (await db.execute(select(MfaFactor.secret_encrypted))).scalar_one()
    assert stored is not None
    assert box_of(settings, new).decrypt(stored) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SecretUnreadable):
        box_of(settings, old).decrypt(stored)
