"""Request and response bodies of the authentication domain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.examples import (
    EXAMPLE_ACCESS_TOKEN,
    EXAMPLE_EMAIL,
    EXAMPLE_PASSWORD,
    EXAMPLE_REFRESH_TOKEN,
)
from atrium.core.schemas import POLICY_MARK, EmailAddress, RequestModel
from atrium.errors import ProblemDetails
from atrium.mail.schemas import LocaleField


class RegisterRequest(RequestModel):
    """A new account. The password policy is checked by the service (422 ``weak_password``)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": EXAMPLE_EMAIL, "password": EXAMPLE_PASSWORD}]}
    )

    email: EmailAddress
    password: str = Field(max_length=1024, json_schema_extra={POLICY_MARK: True})
    locale: LocaleField = None


class TokenResponse(BaseModel):
    """An access token (JWT, RFC 9068) and a single-use refresh token (RFC 6749 §5.1)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": EXAMPLE_ACCESS_TOKEN,
                    "refresh_token": EXAMPLE_REFRESH_TOKEN,
                    "token_type": "bearer",  # nosec B105
                    "expires_in": 900,
                    "acr": "aal1",
                    "amr": ["pwd"],
                    "auth_time": 1764662400,
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # nosec B105
    expires_in: int = Field(description="Lifetime of the access token in seconds.")
    acr: Literal["aal1", "aal2"] = Field(
        description="The session's assurance level (NIST SP 800-63B AAL), as in the token."
    )
    amr: list[str] = Field(
        description="Authentication methods of the session (RFC 8176): pwd, otp, mfa, ..."
    )
    auth_time: int = Field(
        description="When the user last actively authenticated (seconds since the epoch)."
    )


class RefreshRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": EXAMPLE_REFRESH_TOKEN}]}
    )

    refresh_token: str = Field(max_length=1024)


class LogoutRequest(RequestModel):
    """Optional body of logout: the refresh token of the session, if the client has it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": EXAMPLE_REFRESH_TOKEN}]}
    )

    refresh_token: str | None = Field(default=None, max_length=1024)


class JWKSet(BaseModel):
    """A JSON Web Key Set (RFC 7517 §5)."""

    keys: list[dict[str, str]]


class MfaRequiredProblem(ProblemDetails):
    """The 401 ``mfa_required`` answer of a login whose first factor is right: continue
    with ``POST /auth/mfa/verify`` within ``expires_in`` seconds. (401
    ``invalid_credentials`` has only the common members.)"""

    # Problem details (RFC 9457) with extension members: titled as the common schema.
    model_config = ConfigDict(title="ProblemDetails")

    mfa_token: str | None = Field(default=None, description="Single use, for this client.")
    expires_in: int | None = Field(default=None, description="Lifetime of the mfa_token (s).")
    factors: list[dict[str, str]] | None = Field(
        default=None, description="The account's verified factors: `[{id, type}]`."
    )


MFA_REQUIRED_RESPONSE = {
    "description": "`invalid_credentials`, `mfa_required` (with `mfa_token` and `factors`)",
    "content": {
        "application/problem+json": {
            "schema": MfaRequiredProblem.model_json_schema(),
            "example": {
                "type": "about:blank",
                "title": "A second factor is required",
                "status": 401,
                "code": "mfa_required",
                "mfa_token": "bWZhIHRva2VuIGV4YW1wbGU",  # nosec B105 - an OpenAPI example
                "expires_in": 300,
                "factors": [{"id": "0b9a7c64-5d0e-4d8f-9b1a-3c2e7f6a1d42", "type": "totp"}],
            },
        }
    },
}
