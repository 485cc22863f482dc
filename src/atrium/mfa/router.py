"""HTTP routes of the caller's second factors and trusted devices: /api/v1/users/me/mfa*,
/api/v1/users/me/trusted-devices*."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from atrium.auth.dependencies import CurrentPrincipal, SessionPrincipal, VerifiedUser
from atrium.auth.exceptions import ApiKeyNotAllowed
from atrium.auth.stepup import StepUp, StepUpRequired
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.mfa.devices import DeviceService
from atrium.mfa.exceptions import (
    FactorAlreadyVerified,
    FactorNotFound,
    InvalidEnrolmentCode,
    MfaNotEnabled,
    TooManyFactors,
    TrustedDeviceNotFound,
)
from atrium.mfa.factors import FactorService
from atrium.mfa.schemas import (
    CodeRequest,
    MfaStatus,
    RecoveryCodes,
    TotpEnrolment,
    TotpEnrolRequest,
    TotpVerified,
    TrustedDeviceRead,
)
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(prefix="/users/me", tags=["mfa"])

_AUTH = (NotAuthenticated, InvalidToken)
_CHANGE = (NotAuthenticated, InvalidToken, EmailNotVerified, ApiKeyNotAllowed, StepUpRequired)


@router.get("/mfa", response_model=MfaStatus, responses=problem_responses(*_AUTH))
async def mfa_status(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> MfaStatus:
    """The caller's second factors, recovery codes left and whether a role requires MFA."""
    return await FactorService(db, ctx).status(principal)


@router.post(
    "/mfa/totp",
    status_code=status.HTTP_201_CREATED,
    response_model=TotpEnrolment,
    responses=problem_responses(*_CHANGE, TooManyFactors, ValidationFailed),
)
async def enrol_totp(
    body: TotpEnrolRequest, _: VerifiedUser, principal: StepUp, db: DbSession, ctx: Ctx
) -> TotpEnrolment:
    """Start a TOTP factor (RFC 6238): its secret and QR code; verify a code to finish."""
    return await FactorService(db, ctx).enrol_totp(principal, body.name)


@router.post(
    "/mfa/totp/{factor_id}/verify",
    response_model=TotpVerified,
    responses=problem_responses(
        *_AUTH,
        EmailNotVerified,
        ApiKeyNotAllowed,
        FactorNotFound,
        FactorAlreadyVerified,
        InvalidEnrolmentCode,
        ValidationFailed,
    ),
)
async def verify_totp(
    factor_id: uuid.UUID,
    body: CodeRequest,
    _: VerifiedUser,
    principal: SessionPrincipal,
    db: DbSession,
    ctx: Ctx,
) -> TotpVerified:
    """Verify a pending TOTP factor; the first factor turns MFA on (recovery codes, aal2)."""
    return await FactorService(db, ctx).verify_totp(principal, factor_id, body.code)


@router.post(
    "/mfa/recovery-codes",
    response_model=RecoveryCodes,
    responses=problem_responses(*_CHANGE, MfaNotEnabled),
)
async def regenerate_recovery_codes(
    _: VerifiedUser, principal: StepUp, db: DbSession, ctx: Ctx
) -> RecoveryCodes:
    """Replace the recovery codes with ten new ones (shown once)."""
    return await FactorService(db, ctx).regenerate_recovery_codes(principal)


@router.delete(
    "/mfa/{factor_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        *_AUTH, ApiKeyNotAllowed, StepUpRequired, FactorNotFound, ValidationFailed
    ),
)
async def remove_factor(
    factor_id: uuid.UUID, principal: StepUp, db: DbSession, ctx: Ctx
) -> Response:
    """Remove a factor; removing the last one turns MFA off (the owner is emailed)."""
    await FactorService(db, ctx).remove(principal, factor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/trusted-devices",
    response_model=list[TrustedDeviceRead],
    responses=problem_responses(*_AUTH),
)
async def list_trusted_devices(
    principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> list[TrustedDeviceRead]:
    """The devices that skip the second factor at login, newest first."""
    return await DeviceService(db, ctx).list(principal)


@router.delete(
    "/trusted-devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_AUTH, TrustedDeviceNotFound, ValidationFailed),
)
async def revoke_trusted_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> Response:
    """Stop trusting a device: its next login asks for the second factor again."""
    await DeviceService(db, ctx).revoke(principal, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
