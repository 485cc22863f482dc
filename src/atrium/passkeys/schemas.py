"""Request and response bodies of the passkeys domain.

WebAuthn's own JSON forms keep their W3C member names (camelCase: ``rawId``,
``clientDataJSON``, ``pubKeyCredParams``...): clients pass them to and from the browser's
``PublicKeyCredential`` API unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from atrium.core.schemas import EmailAddress, RequestModel

_CREDENTIAL_EXAMPLE: dict[str, Any] = {
    "id": "3q2-7w",
    "rawId": "3q2-7w",
    "type": "public-key",
    "response": {
        "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0Ii4uLn0",
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
        "signature": "MEUCIQ...",
        "userHandle": "C2m5-1n0SFaYZ9cE4aJ3dw",
    },
    "clientExtensionResults": {},
}
_CREATION_EXAMPLE: dict[str, Any] = {
    "rp": {"name": "Atrium", "id": "id.example.com"},
    "user": {"id": "C2m5-1n0SFaYZ9cE4aJ3dw", "name": "ada@example.com", "displayName": "Ada"},
    "challenge": "q3bGm0b7bmVpZ2h0LWJ5dGUtY2hhbGxlbmdl",
    "pubKeyCredParams": [{"type": "public-key", "alg": -8}, {"type": "public-key", "alg": -7}],
    "timeout": 300000,
    "excludeCredentials": [],
    "authenticatorSelection": {"residentKey": "required", "userVerification": "preferred"},
    "attestation": "none",
}
_REQUEST_EXAMPLE: dict[str, Any] = {
    "challenge": "q3bGm0b7bmVpZ2h0LWJ5dGUtY2hhbGxlbmdl",
    "timeout": 300000,
    "rpId": "id.example.com",
    "allowCredentials": [],
    "userVerification": "preferred",
}


class CreationOptions(RootModel[dict[str, Any]]):
    """``PublicKeyCredentialCreationOptionsJSON`` (W3C WebAuthn Level 3 §5.1.8): pass it to
    ``PublicKeyCredential.parseCreationOptionsFromJSON`` and ``navigator.credentials.create``."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CREATION_EXAMPLE]})


class PasskeyRegistration(RequestModel):
    """A new passkey: the credential ``navigator.credentials.create`` gave (its ``toJSON()``)
    and a name for its owner."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Laptop",
                    "credential": {
                        "id": "3q2-7w",
                        "rawId": "3q2-7w",
                        "type": "public-key",
                        "response": {
                            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIi4uLn0",
                            "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVi...",
                            "transports": ["internal", "hybrid"],
                        },
                        "clientExtensionResults": {},
                    },
                }
            ]
        },
    )

    credential: dict[str, Any]
    name: str = Field(min_length=1, max_length=100)


class PasskeyUpdate(RequestModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Phone"}]})

    name: str = Field(min_length=1, max_length=100)


class PasskeyRead(BaseModel):
    """A passkey as its owner sees it (never its public key or credential id)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "8f2e0c1a-4b5d-4e6f-9a7b-1c2d3e4f5a6b",
                    "name": "Laptop",
                    "created_at": "2026-12-02T09:00:00Z",
                    "last_used_at": "2026-12-02T09:30:00Z",
                    "backed_up": True,
                    "device_type": "multi_device",
                    "transports": ["internal", "hybrid"],
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool = Field(description="The credential is backed up (synced across devices).")
    device_type: str = Field(description="`single_device` or `multi_device` (WebAuthn L3 §6.1.3).")
    transports: list[str]


class PasskeyOptionsRequest(RequestModel):
    """Sign-in options: with ``email`` the account's passkeys are listed
    (``allowCredentials``); without, any discoverable passkey of this site is offered."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{}, {"email": "ada@example.com"}]}
    )

    email: EmailAddress | None = None


class RequestOptions(BaseModel):
    """A sign-in challenge: its id (send it back with the assertion) and the
    ``PublicKeyCredentialRequestOptionsJSON`` (§5.1.9) for
    ``PublicKeyCredential.parseRequestOptionsFromJSON`` and ``navigator.credentials.get``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "challenge_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
                    "public_key": _REQUEST_EXAMPLE,
                }
            ]
        }
    )

    challenge_id: uuid.UUID
    public_key: dict[str, Any]


class PasskeyLogin(RequestModel):
    """The assertion ``navigator.credentials.get`` gave (its ``toJSON()``) for a challenge."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "challenge_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
                    "credential": _CREDENTIAL_EXAMPLE,
                }
            ]
        },
    )

    challenge_id: uuid.UUID
    credential: dict[str, Any]
