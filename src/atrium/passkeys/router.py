"""HTTP routes of passkeys: /api/v1/users/me/passkeys* (the owner, signed in with a
session: never with an API key) and /api/v1/auth/passkey/* (passwordless sign-in, public)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response, status

from atrium.auth.dependencies import SessionPrincipal, VerifiedUser
from atrium.auth.exceptions import AccountSuspended, ApiKeyNotAllowed
from atrium.auth.schemas import TokenResponse
from atrium.auth.stepup import StepUp, StepUpRequired
from atrium.context import Ctx
from atrium.core.client import client_from_scope
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited, rate_limit
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.mfa.exceptions import InvalidMfaToken
from atrium.mfa.schemas import MfaTokenRequest
from atrium.passkeys.exceptions import (
    InvalidChallenge,
    InvalidPasskey,
    NoPasskey,
    PasskeyExists,
    PasskeyLimitReached,
    PasskeyNotFound,
    PasskeyRegistrationFailed,
)
from atrium.passkeys.login import PasskeyLogin
from atrium.passkeys.schemas import (
    CreationOptions,
    PasskeyOptionsRequest,
    PasskeyRead,
    PasskeyRegistration,
    PasskeyUpdate,
    RequestOptions,
)
from atrium.passkeys.schemas import (
    PasskeyLogin as PasskeyLoginBody,
)
from atrium.passkeys.second_factor import SecondFactorOptions
from atrium.passkeys.service import PasskeyService
from atrium.verification.exceptions import EmailNotVerified

router = APIRouter(prefix="/users/me/passkeys", tags=["passkeys"])
auth_router = APIRouter(prefix="/auth/passkey", tags=["auth", "passkeys"])
factor_router = APIRouter(prefix="/auth", tags=["auth", "passkeys"])

_OWNER_ERRORS = (NotAuthenticated, InvalidToken, ApiKeyNotAllowed)
# Adding or removing a passkey changes the account's factors: a recent authentication, at
# aal2 once the account has MFA (RFC 9470 step-up).
_CHANGE_ERRORS = (*_OWNER_ERRORS, StepUpRequired)
# A passkey is a second factor: enrolling one needs a verified email (like TOTP).
_ENROL_ERRORS = (*_CHANGE_ERRORS, EmailNotVerified)


@router.post(
    "/registration/options",
    response_model=CreationOptions,
    responses=problem_responses(*_ENROL_ERRORS, PasskeyLimitReached),
)
async def passkey_registration_options(
    _: VerifiedUser, principal: StepUp, db: DbSession, ctx: Ctx
) -> CreationOptions:
    """Creation options for a new passkey (discoverable, user verification preferred,
    no attestation); the challenge is single use. Needs a recent authentication."""
    return CreationOptions(await PasskeyService(db, ctx).registration_options(principal.user_id))


@router.post(
    "/registration",
    status_code=status.HTTP_201_CREATED,
    response_model=PasskeyRead,
    responses=problem_responses(
        *_ENROL_ERRORS,
        InvalidChallenge,
        PasskeyRegistrationFailed,
        PasskeyExists,
        PasskeyLimitReached,
        ValidationFailed,
    ),
)
async def register_passkey(
    body: PasskeyRegistration, _: VerifiedUser, principal: StepUp, db: DbSession, ctx: Ctx
) -> PasskeyRead:
    """Register the passkey created for the options' challenge; the owner is emailed.
    Needs a recent authentication; the first passkey turns MFA on."""
    return await PasskeyService(db, ctx).register(principal, body.credential, body.name)


@router.get("", response_model=list[PasskeyRead], responses=problem_responses(*_OWNER_ERRORS))
async def list_passkeys(principal: SessionPrincipal, db: DbSession, ctx: Ctx) -> list[PasskeyRead]:
    """The caller's passkeys, newest first."""
    return await PasskeyService(db, ctx).list_of(principal.user_id)


@router.patch(
    "/{passkey_id}",
    response_model=PasskeyRead,
    responses=problem_responses(*_OWNER_ERRORS, PasskeyNotFound, ValidationFailed),
)
async def rename_passkey(
    passkey_id: uuid.UUID,
    body: PasskeyUpdate,
    principal: SessionPrincipal,
    db: DbSession,
    ctx: Ctx,
) -> PasskeyRead:
    """Rename one of the caller's passkeys."""
    return await PasskeyService(db, ctx).rename(principal.user_id, passkey_id, body.name)


@router.delete(
    "/{passkey_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_CHANGE_ERRORS, PasskeyNotFound, ValidationFailed),
)
async def delete_passkey(
    passkey_id: uuid.UUID, principal: StepUp, db: DbSession, ctx: Ctx
) -> Response:
    """Delete one of the caller's passkeys: it can no longer sign in (needs a recent
    authentication; the last factor turns MFA off)."""
    await PasskeyService(db, ctx).remove(principal.user_id, passkey_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth_router.post(
    "/options",
    response_model=RequestOptions,
    responses=problem_responses(ValidationFailed, RateLimited),
    dependencies=[Depends(rate_limit("login"))],
)
async def passkey_options(body: PasskeyOptionsRequest, db: DbSession, ctx: Ctx) -> RequestOptions:
    """Request options and a single-use `challenge_id` for signing in with a passkey
    (public); without `email`, any discoverable passkey of this site is offered."""
    return await PasskeyLogin(db, ctx).options(body.email)


@auth_router.post(
    "/login",
    response_model=TokenResponse,
    responses=problem_responses(
        InvalidChallenge, InvalidPasskey, AccountSuspended, ValidationFailed, RateLimited
    ),
    dependencies=[Depends(rate_limit("login"))],
)
async def passkey_login(
    request: Request, body: PasskeyLoginBody, db: DbSession, ctx: Ctx
) -> TokenResponse:
    """Sign in with a passkey's assertion for the challenge (public): the token pair."""
    return await PasskeyLogin(db, ctx).login(
        body.challenge_id, body.credential, client_from_scope(request.scope)
    )


@factor_router.post(
    "/mfa/webauthn/options",
    response_model=RequestOptions,
    responses=problem_responses(InvalidMfaToken, NoPasskey, ValidationFailed, RateLimited),
    dependencies=[Depends(rate_limit("login"))],
)
async def mfa_webauthn_options(
    body: MfaTokenRequest, request: Request, db: DbSession, ctx: Ctx
) -> RequestOptions:
    """Request options for a passkey as the second factor of a pending login (public):
    send the assertion as `webauthn` to `POST /auth/mfa/verify`."""
    return await SecondFactorOptions(db, ctx).for_login(
        body.mfa_token, client_from_scope(request.scope)
    )


@factor_router.post(
    "/step-up/webauthn/options",
    response_model=RequestOptions,
    responses=problem_responses(*_OWNER_ERRORS, NoPasskey, RateLimited),
    dependencies=[Depends(rate_limit("login"))],
)
async def step_up_webauthn_options(
    principal: SessionPrincipal, db: DbSession, ctx: Ctx
) -> RequestOptions:
    """Request options for stepping up with one of the caller's passkeys: send the
    assertion as `webauthn` to `POST /auth/step-up`."""
    return await SecondFactorOptions(db, ctx).for_user(principal.user_id)
