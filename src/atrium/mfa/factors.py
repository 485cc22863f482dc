"""The account's own second factors: TOTP enrolment and verification, removal, recovery
codes (OWASP MFA Cheat Sheet; NIST SP 800-63B §5.1.4.2 single-factor OTP, §5.1.2
look-up secrets).

Rules: enrolling needs a verified email (the router's ``VerifiedUser``) and passes the
step-up check (``StepUp``: a recent authentication, and aal2 once the account has a
verified factor). The first verified factor turns MFA on: ten recovery codes are shown
once, the account's other aal1 sessions are revoked, and the caller's session is raised
to aal2 (it proved the password at login and the code now) with a fresh pair. Every change
of the factors revokes the trusted devices, is audited and emails the owner.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.assurance import has_second_factor, mfa_requirement
from atrium.auth.principal import Principal
from atrium.auth.repository import SessionRepository
from atrium.auth.signin import SignIn
from atrium.context import AppContext
from atrium.core.tokens import Assurance
from atrium.errors import InvalidToken
from atrium.mfa import recovery, totp
from atrium.mfa.exceptions import (
    FactorAlreadyVerified,
    FactorNotFound,
    InvalidEnrolmentCode,
    MfaNotEnabled,
    TooManyFactors,
)
from atrium.mfa.notices import Notices
from atrium.mfa.repository import MfaRepository
from atrium.mfa.schemas import (
    FactorRead,
    MfaStatus,
    RecoveryCodes,
    TotpEnrolment,
    TotpVerified,
)
from atrium.mfa.stepup import merged_amr
from atrium.mfa.verifiers import secret_box
from atrium.models import MfaFactor, User
from atrium.users.exceptions import UserNotFound
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)

MAX_FACTORS = 10


class FactorService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = MfaRepository(db)
        self.notices = Notices(db, ctx)

    async def _caller(self, principal: Principal) -> User:
        return await UserRepository(self.db).get_caller(principal.user_id)

    async def status(self, principal: Principal) -> MfaStatus:
        """The caller's factors (TOTP, then passkeys as ``webauthn``), recovery codes left
        and the role requirement."""
        factors = await self.repo.factors_of(principal.user_id)
        passkeys = await self.repo.passkeys_of(principal.user_id)
        enabled = bool(passkeys) or any(f.verified_at is not None for f in factors)
        requirement = await mfa_requirement(self.db, self.ctx, principal.user_id)
        return MfaStatus(
            enabled=enabled,
            factors=[
                FactorRead(
                    id=f.id,
                    type=f.type,
                    name=f.name,
                    status="verified" if f.verified_at is not None else "pending",
                    created_at=f.created_at,
                    last_used_at=f.last_used_at,
                )
                for f in factors
            ]
            + [
                FactorRead(
                    id=p.id,
                    type="webauthn",
                    name=p.name,
                    status="verified",
                    created_at=p.created_at,
                    last_used_at=p.last_used_at,
                )
                for p in passkeys
            ],
            recovery_codes_remaining=(
                await self.repo.recovery_codes_left(principal.user_id) if enabled else 0
            ),
            required=requirement.required,
            enrollment_deadline=requirement.deadline,
        )

    async def enrol_totp(self, principal: Principal, name: str) -> TotpEnrolment:
        """A new pending TOTP factor (any earlier pending one is dropped).

        Raises:
            TooManyFactors: 409, the account already has :data:`MAX_FACTORS` factors.
        """
        user = await self._caller(principal)
        await self.repo.delete_pending(user.id, "totp")
        if len(await self.repo.factors_of(user.id)) >= MAX_FACTORS:
            raise TooManyFactors(f"An account has at most {MAX_FACTORS} factors.")
        secret = totp.new_secret()
        now = self.ctx.clock.now()
        factor = MfaFactor(
            id=uuid.uuid4(),
            user_id=user.id,
            type="totp",
            name=name,
            secret_encrypted=secret_box(self.ctx).encrypt(secret),
            created_at=now,
        )
        await self.repo.add(factor)
        issuer = self.ctx.settings.mfa.totp_issuer or self.ctx.settings.product_name
        uri = totp.provisioning_uri(secret, user.email, issuer)
        return TotpEnrolment(
            factor_id=factor.id, secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri)
        )

    async def verify_totp(
        self, principal: Principal, factor_id: uuid.UUID, code: str
    ) -> TotpVerified:
        """Verify a pending TOTP factor with a current code (±1 step); on the account's
        first factor, answer recovery codes and a fresh aal2 pair (see the module).

        Raises:
            FactorNotFound: 404, not a factor of the caller.
            FactorAlreadyVerified: 409.
            InvalidEnrolmentCode: 422 ``invalid_otp``, wrong or expired code.
        """
        user = await self._caller(principal)
        factor = await self.repo.factor_of(user.id, factor_id)
        if factor is None or factor.type != "totp" or factor.secret_encrypted is None:
            raise FactorNotFound("No such factor.")
        if factor.verified_at is not None:
            raise FactorAlreadyVerified("The factor is already verified.")
        now = self.ctx.clock.now()
        secret = secret_box(self.ctx).decrypt(factor.secret_encrypted)
        step = totp.matching_step(secret, code, now)
        first = not await has_second_factor(self.db, user.id)
        if step is None or not await self.repo.accept_step(factor.id, step, now, verify=True):
            raise InvalidEnrolmentCode("The code is not valid; check the device's clock.")
        await UserRepository(self.db).revoke_trusted_devices(user.id)
        await self.notices.factor_added(user, factor.id, factor.name, now)
        log.info("mfa_factor_added", user_id=str(user.id), first=first)
        if not first:
            return TotpVerified(factor_id=factor.id)
        codes = await self._new_recovery_codes(user)
        revoked = await UserRepository(self.db).revoke_aal1_sessions(
            user.id, now, "mfa_enabled", except_session=principal.session_id
        )
        self.ctx.principals.revoke_on_commit(self.db, revoked)
        session = await SessionRepository(self.db).get_user_session(user.id, principal.session_id)
        if session is None or session.revoked_at is not None:
            raise InvalidToken("The session has ended; log in again.")
        assurance = Assurance(
            aal=2,
            amr=merged_amr(session.amr, ("otp",), aal=2),
            auth_time=int(session.auth_time.timestamp()),
        )
        tokens = await SignIn(self.db, self.ctx).reauthenticate(user.id, session.id, assurance)
        return TotpVerified(factor_id=factor.id, recovery_codes=codes, tokens=tokens)

    async def _new_recovery_codes(self, user: User) -> list[str]:
        codes = recovery.new_codes()
        await self.repo.replace_recovery_codes(
            user.id, [recovery.code_hash(c) for c in codes], self.ctx.clock.now()
        )
        return codes

    async def regenerate_recovery_codes(self, principal: Principal) -> RecoveryCodes:
        """A new set of ten codes; the previous set stops working.

        Raises:
            MfaNotEnabled: 409, the account has no verified factor.
        """
        user = await self._caller(principal)
        if not await has_second_factor(self.db, user.id):
            raise MfaNotEnabled("Turn MFA on first: recovery codes are never the only factor.")
        codes = await self._new_recovery_codes(user)
        await self.notices.recovery_codes_generated(user, self.ctx.clock.now())
        return RecoveryCodes(recovery_codes=codes)

    async def remove(self, principal: Principal, factor_id: uuid.UUID) -> None:
        """Remove a factor of the caller (a TOTP factor or a passkey); removing the last
        verified one turns MFA off (the recovery codes go with it).

        Raises:
            FactorNotFound: 404.
        """
        user = await self._caller(principal)
        factor = await self.repo.factor_of(user.id, factor_id)
        if factor is None:
            passkey = await self.repo.delete_passkey(user.id, factor_id)
            if passkey is None:
                raise FactorNotFound("No such factor.")
            await self.factor_gone(user, passkey.id, passkey.name, "webauthn")
            return
        await self.repo.delete_factors(user.id, [factor.id])
        if factor.verified_at is None:
            return  # an abandoned enrolment: nothing had changed
        await self.factor_gone(user, factor.id, factor.name, factor.type)

    async def factor_gone(
        self, user: User, factor_id: uuid.UUID, name: str, factor_type: str
    ) -> None:
        """After a verified factor (``totp``) or a passkey (``webauthn``) was deleted: when
        it was the last, MFA is off and the recovery codes go; the trusted devices are
        revoked; audited (``mfa.factor_removed``) and the owner emailed."""
        now = self.ctx.clock.now()
        disabled = not await has_second_factor(self.db, user.id)
        if disabled:
            await self.repo.delete_recovery_codes(user.id)
        await UserRepository(self.db).revoke_trusted_devices(user.id)
        await self.notices.factor_removed(
            user, factor_id, name, now, disabled=disabled, factor_type=factor_type
        )
        log.info("mfa_factor_removed", user_id=str(user.id), mfa_disabled=disabled)

    async def passkey_added(
        self, user: User, session_id: uuid.UUID, passkey_id: uuid.UUID, first: bool
    ) -> None:
        """After a passkey was registered (a factor of type ``webauthn``): the trusted
        devices are revoked and the change audited (``mfa.factor_added``; the owner gets the
        passkeys domain's ``passkey_added`` email). When it is the account's first factor,
        MFA turns on: the other aal1 sessions are revoked (``session_id``, the caller's,
        stays; it reaches aal2 by a step-up with the passkey)."""
        now = self.ctx.clock.now()
        await UserRepository(self.db).revoke_trusted_devices(user.id)
        await self.notices.factor_added(user, passkey_id, "", now, factor_type="webauthn")
        if first:
            revoked = await UserRepository(self.db).revoke_aal1_sessions(
                user.id, now, "mfa_enabled", except_session=session_id
            )
            self.ctx.principals.revoke_on_commit(self.db, revoked)
        log.info("mfa_factor_added", user_id=str(user.id), first=first, type="webauthn")

    async def reset(self, admin_id: uuid.UUID, user_id: uuid.UUID) -> int:
        """Remove every factor (TOTP factors and passkeys), recovery code and trusted device
        of an account (admin, for a lost authenticator); the number of factors removed.

        Raises:
            UserNotFound: 404.
        """
        user = await UserRepository(self.db).get(user_id)
        if user is None or user.deleted_at is not None:
            raise UserNotFound("No such user.")
        factors = await self.repo.factors_of(user.id)
        await self.repo.delete_factors(user.id, [f.id for f in factors])
        passkeys = await self.repo.delete_passkeys(user.id)
        await self.repo.delete_recovery_codes(user.id)
        await UserRepository(self.db).revoke_trusted_devices(user.id)
        count = sum(1 for f in factors if f.verified_at is not None) + passkeys
        await self.notices.reset_by_admin(user, admin_id, count, self.ctx.clock.now())
        log.info("mfa_reset", user_id=str(user.id), admin_id=str(admin_id), factors=count)
        return count
