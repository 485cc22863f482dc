"""Request and response bodies of social login."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from atrium.config import (
    PROVIDER_ID_PATTERN,
    PROVIDER_URL_PATTERN,
    ClaimField,
    IdentityProviderSettings,
    ScopeToken,
)
from atrium.core.schemas import RequestModel

EXAMPLE_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B


class ProviderPublic(BaseModel):
    """A provider offered for sign-in, with the URL that starts it."""

    id: str
    display_name: str
    kind: Literal["oidc", "github"]
    authorize_url: str = Field(description="Open this in the browser to sign in.")


class ExchangeRequest(RequestModel):
    """A ``login_code`` from the redirect and the PKCE ``code_verifier`` whose S256
    challenge the app sent to ``authorize`` (RFC 7636)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "login_code": "Jx3sQ0P2g6Yh1vY3l7b2C1o8tVd9mFzK4wN5rT0aBcE",
                    "code_verifier": EXAMPLE_VERIFIER,
                }
            ]
        }
    )

    login_code: str = Field(min_length=1, max_length=256)
    code_verifier: str = Field(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")


class IdentityRead(BaseModel):
    """An external identity linked to the caller's account."""

    id: uuid.UUID
    provider: str
    email: str | None
    created_at: datetime
    last_login_at: datetime | None


class IdentityList(BaseModel):
    items: list[IdentityRead]
    has_password: bool = Field(description="Whether the account can also sign in with a password.")


class LinkStartRequest(RequestModel):
    """Where to send the browser once the provider has answered (a path of Atrium's own)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"redirect_to": "/account/security"}]}
    )

    redirect_to: str | None = Field(default=None, max_length=2048)


class LinkStart(BaseModel):
    authorization_url: str = Field(
        description="Open this in the same browser (it carries the binding cookie just set)."
    )


ProviderId = Field(pattern=PROVIDER_ID_PATTERN, max_length=40)


_GOOGLE_EXAMPLE: dict[str, str | bool] = {
    "id": "google",
    "preset": "google",
    "client_id": "1234-abc.apps.googleusercontent.com",
    "client_secret": "GOCSPX-example",  # nosec B105 - an OpenAPI example
    "trust_email_verified": True,
}


class ProviderCreate(IdentityProviderSettings):
    """A new identity provider; ``client_secret`` is write-only (stored encrypted)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [dict(_GOOGLE_EXAMPLE)]}
    )


class ProviderUpdate(RequestModel):
    """Fields to change; ``client_secret: null`` removes the secret, absent keeps it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"enabled": False}, {"client_secret": "new-secret"}]},  # nosec B105 - OpenAPI examples
    )

    kind: Literal["oidc", "github"] | None = None
    preset: Literal["google", "microsoft"] | None = None
    display_name: str | None = Field(default=None, max_length=100)
    issuer: str | None = Field(default=None, max_length=512, pattern=PROVIDER_URL_PATTERN)
    tenant: str | None = Field(default=None, max_length=64)
    authorization_endpoint: str | None = Field(
        default=None, max_length=2048, pattern=PROVIDER_URL_PATTERN
    )
    token_endpoint: str | None = Field(default=None, max_length=2048, pattern=PROVIDER_URL_PATTERN)
    api_base_url: str | None = Field(default=None, max_length=2048, pattern=PROVIDER_URL_PATTERN)
    client_id: str | None = Field(default=None, min_length=1, max_length=255)
    client_secret: str | None = Field(default=None, max_length=1024)
    scopes: list[ScopeToken] | None = Field(default=None, max_length=20)
    claim_mapping: dict[ClaimField, str] | None = None
    trust_email_verified: bool | None = None
    enabled: bool | None = None


class ProviderRead(BaseModel):
    """An identity provider as configured (never its secret), with the redirect URI to
    register at the provider."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "google",
                    "kind": "oidc",
                    "preset": "google",
                    "display_name": "Google",
                    "issuer": "https://accounts.google.com",
                    "tenant": None,
                    "authorization_endpoint": None,
                    "token_endpoint": None,  # nosec B105 - an OpenAPI example
                    "api_base_url": None,
                    "client_id": "1234-abc.apps.googleusercontent.com",
                    "has_client_secret": True,  # nosec B105 - an OpenAPI example
                    "scopes": ["openid", "email", "profile"],
                    "claim_mapping": {},
                    "trust_email_verified": True,
                    "enabled": True,
                    "source": "admin",
                    "redirect_uri": "https://id.example.com/api/v1/auth/oauth/google/callback",
                }
            ]
        }
    )

    id: str
    kind: Literal["oidc", "github"]
    preset: Literal["google", "microsoft"] | None
    display_name: str
    issuer: str
    tenant: str | None
    authorization_endpoint: str | None
    token_endpoint: str | None
    api_base_url: str | None
    client_id: str
    has_client_secret: bool
    scopes: list[str]
    claim_mapping: dict[str, str]
    trust_email_verified: bool
    enabled: bool
    source: Literal["settings", "admin"]
    redirect_uri: str
