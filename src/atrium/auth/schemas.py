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
from atrium.core.schemas import RequestModel
from atrium.mail.schemas import LocaleField


class RegisterRequest(RequestModel):
    """A new account. The password policy is checked by the service (422 ``weak_password``)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": EXAMPLE_EMAIL, "password": EXAMPLE_PASSWORD}]}
    )

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
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
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # nosec B105
    expires_in: int = Field(description="Lifetime of the access token in seconds.")


class RefreshRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": EXAMPLE_REFRESH_TOKEN}]}
    )

    refresh_token: str = Field(max_length=512)


class LogoutRequest(RequestModel):
    """Optional body of logout: the refresh token of the session, if the client has it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": EXAMPLE_REFRESH_TOKEN}]}
    )

    refresh_token: str | None = Field(default=None, max_length=512)


class JWKSet(BaseModel):
    """A JSON Web Key Set (RFC 7517 §5)."""

    keys: list[dict[str, str]]
