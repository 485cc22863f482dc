"""Request and response bodies of the MFA domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atrium.auth.schemas import TokenResponse
from atrium.core.examples import EXAMPLE_PASSWORD
from atrium.core.schemas import RequestModel

EXAMPLE_CODE = "492039"
EXAMPLE_RECOVERY_CODE = "K7QD-M2XA-PL4Z-9WTE"
EXAMPLE_MFA_TOKEN = "bWZhIHRva2VuIGV4YW1wbGUgdmFsdWUgb2YgNDMgY2hhcnM"  # noqa: S105  # nosec B105
# The second-factor members of a verification: exactly one is given. Each has its verifier
# in verifiers.py (``webauthn``'s is registered by the passkeys domain).
FACTOR_MEMBERS = ("code", "recovery_code", "webauthn")

Code = Field(default=None, min_length=6, max_length=10, description="A TOTP code (RFC 6238).")
RecoveryCode = Field(default=None, min_length=16, max_length=40, description="A recovery code.")
WebAuthnAssertion = Field(
    default=None,
    description=(
        "A passkey's assertion (``PublicKeyCredential.toJSON()`` of ``navigator.credentials"
        ".get``) for request options of ``POST /auth/mfa/webauthn/options`` (login) or "
        "``POST /auth/step-up/webauthn/options`` (step-up); W3C WebAuthn Level 3 §7.2."
    ),
)
_ASSERTION_EXAMPLE: dict[str, Any] = {
    "id": "3q2-7w",
    "rawId": "3q2-7w",
    "type": "public-key",
    "response": {
        "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0Ii4uLn0",
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
        "signature": "MEUCIQDx...",
        "userHandle": "q1b2c3d4",
    },
    "clientExtensionResults": {},
}


def _exactly_one(model: BaseModel, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(model, n, None) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of: {', '.join(names)}")


class StepUpRequest(RequestModel):
    """Authenticate again in the current session with exactly one of ``password``,
    ``code`` (TOTP), ``recovery_code`` or ``webauthn`` (a passkey's assertion)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"password": EXAMPLE_PASSWORD},
                {"code": EXAMPLE_CODE},
                {"webauthn": _ASSERTION_EXAMPLE},
            ]
        }
    )

    password: str | None = Field(default=None, max_length=1024)
    code: str | None = Code
    recovery_code: str | None = RecoveryCode
    webauthn: dict[str, Any] | None = WebAuthnAssertion

    @model_validator(mode="after")
    def _one_method(self) -> StepUpRequest:
        _exactly_one(self, ("password", *FACTOR_MEMBERS))
        return self

    def factor(self) -> tuple[str, Any]:
        """The second-factor member given, as (name, value); ("password", ...) for a
        password."""
        for name in ("password", *FACTOR_MEMBERS):
            value = getattr(self, name, None)
            if value is not None:
                return name, value
        raise AssertionError("validated: exactly one member")


class MfaVerifyRequest(RequestModel):
    """The second step of a login: the ``mfa_token`` of the ``mfa_required`` answer and
    exactly one of ``code`` (TOTP), ``recovery_code`` or ``webauthn`` (a passkey's
    assertion for the options of ``POST /auth/mfa/webauthn/options``). ``remember_device``:
    answer a ``device_token`` that lets later logins from this client skip the second
    factor."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"mfa_token": EXAMPLE_MFA_TOKEN, "code": EXAMPLE_CODE},
                {"mfa_token": EXAMPLE_MFA_TOKEN, "recovery_code": EXAMPLE_RECOVERY_CODE},
                {"mfa_token": EXAMPLE_MFA_TOKEN, "webauthn": _ASSERTION_EXAMPLE},
            ]
        }
    )

    mfa_token: str = Field(max_length=128)
    code: str | None = Code
    recovery_code: str | None = RecoveryCode
    webauthn: dict[str, Any] | None = WebAuthnAssertion
    remember_device: bool = False

    @model_validator(mode="after")
    def _one_factor(self) -> MfaVerifyRequest:
        _exactly_one(self, FACTOR_MEMBERS)
        return self

    def factor(self) -> tuple[str, Any]:
        for name in FACTOR_MEMBERS:
            value = getattr(self, name, None)
            if value is not None:
                return name, value
        raise AssertionError("validated: exactly one member")


class MfaTokenRequest(RequestModel):
    """The ``mfa_token`` of a login's ``mfa_required`` answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"mfa_token": EXAMPLE_MFA_TOKEN}]})

    mfa_token: str = Field(max_length=128)


class MfaTokenResponse(TokenResponse):
    """The token pair of a login completed with a second factor; ``device_token`` when
    ``remember_device`` was asked (send it as ``device_token`` to later logins)."""

    device_token: str | None = None


class FactorRead(BaseModel):
    """A second factor of the account; ``status`` is ``pending`` until first verified."""

    id: uuid.UUID
    type: str
    name: str
    status: Literal["pending", "verified"]
    created_at: datetime
    last_used_at: datetime | None


class MfaStatus(BaseModel):
    """The account's second factors and what is required of it."""

    enabled: bool = Field(description="Whether the account has a verified factor.")
    factors: list[FactorRead]
    recovery_codes_remaining: int
    required: bool = Field(description="Whether a role of the account requires MFA.")
    enrollment_deadline: datetime | None = Field(
        description="Without a factor, when the grace period of the requirement ends."
    )


class TotpEnrolRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Phone"}]})

    name: str = Field(default="Authenticator app", min_length=1, max_length=64)


class TotpEnrolment(BaseModel):
    """A pending TOTP factor: add ``secret`` (or scan ``qr_svg``, the ``otpauth_uri``)
    to an authenticator app, then verify a code."""

    factor_id: uuid.UUID
    secret: str = Field(description="Base32 (RFC 4648) shared secret, shown once.")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code (SVG document).")


class CodeRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": EXAMPLE_CODE}]})

    code: str = Field(min_length=6, max_length=10)


class TotpVerified(BaseModel):
    """The factor is verified. On the account's first factor: ``recovery_codes`` (shown
    once) and a fresh pair for this session at aal2 (``tokens``)."""

    factor_id: uuid.UUID
    recovery_codes: list[str] | None = None
    tokens: TokenResponse | None = None


class RecoveryCodes(BaseModel):
    """A new set of recovery codes (shown once; the previous set no longer works)."""

    recovery_codes: list[str]


class TrustedDeviceRead(BaseModel):
    id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    user_agent: str | None
    ip_address: str | None
