"""The relying party of WebAuthn ceremonies, over py_webauthn (W3C WebAuthn Level 3).

Options are answered in the WebAuthn JSON forms (``PublicKeyCredentialCreationOptionsJSON``
and ``PublicKeyCredentialRequestOptionsJSON``, §5.1.8-5.1.9) that a browser passes to
``PublicKeyCredential.parseCreationOptionsFromJSON`` / ``parseRequestOptionsFromJSON``;
credentials are taken in the JSON form of ``PublicKeyCredential.toJSON()``.

The relying party id and the accepted origins are settings (``webauthn.rp_id``,
``webauthn.origins``); unset, both come from ``mail.link_base_url``, the server's public
address. Registration asks for a discoverable credential (``residentKey: required``),
user verification ``preferred`` and no attestation (``attestation: none``: Atrium trusts
no authenticator model more than another).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from atrium.config import Settings


class CeremonyFailed(Exception):
    """The credential does not pass the ceremony's checks; the message says which (for
    logs): wrong origin, RP id, challenge, signature, counter, or a malformed structure."""


def b64url_decode(value: str) -> bytes:
    """Base64url without padding (RFC 4648 §5), as WebAuthn's JSON forms use it.

    Raises:
        ValueError: not base64url.
    """
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def b64url_encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def client_challenge(credential: Any) -> bytes | None:
    """The challenge a credential's ``clientDataJSON`` answers, unverified (to find the
    ceremony it belongs to); None when the structure is not there."""
    try:
        client_data = json.loads(b64url_decode(credential["response"]["clientDataJSON"]))
        return b64url_decode(client_data["challenge"])
    except (KeyError, TypeError, ValueError):
        return None


def credential_id(credential: Any) -> bytes | None:
    """The ``rawId`` of a credential's JSON form; None when absent or malformed."""
    try:
        raw = b64url_decode(credential["rawId"])
    except (KeyError, TypeError, ValueError):
        return None
    return raw or None


def user_handle(credential: Any) -> bytes | None:
    """The ``userHandle`` of an assertion's JSON form; None when absent or malformed."""
    try:
        value = credential["response"].get("userHandle")
        return b64url_decode(value) if isinstance(value, str) and value else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _descriptors(credentials: list[tuple[bytes, list[str]]]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=cred_id, transports=[AuthenticatorTransport(t) for t in transports if t in known]
        )
        for cred_id, transports in credentials
    ]


@dataclass(frozen=True)
class RelyingParty:
    """This deployment as a WebAuthn relying party."""

    id: str
    name: str
    origins: tuple[str, ...]
    timeout_ms: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RelyingParty:
        parts = urlsplit(settings.mail.link_base_url)
        own_origin = f"{parts.scheme}://{parts.netloc}"
        web = settings.webauthn
        return cls(
            id=web.rp_id or parts.hostname or "localhost",
            name=web.rp_name or settings.product_name,
            origins=tuple(web.origins) or (own_origin,),
            timeout_ms=web.challenge_ttl_seconds * 1000,
        )

    def creation_options(
        self,
        *,
        challenge: bytes,
        user_handle: bytes,
        user_name: str,
        display_name: str,
        exclude: list[tuple[bytes, list[str]]],
    ) -> dict[str, Any]:
        """``PublicKeyCredentialCreationOptionsJSON`` for a new discoverable credential
        (``residentKey: required``, ``userVerification: preferred``, ``attestation: none``),
        excluding the account's existing ``(credential id, transports)``."""
        options = generate_registration_options(
            rp_id=self.id,
            rp_name=self.name,
            user_id=user_handle,
            user_name=user_name,
            user_display_name=display_name,
            challenge=challenge,
            timeout=self.timeout_ms,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=_descriptors(exclude),
        )
        return options_to_json_dict(options)

    def request_options(
        self, *, challenge: bytes, allow: list[tuple[bytes, list[str]]]
    ) -> dict[str, Any]:
        """``PublicKeyCredentialRequestOptionsJSON``: ``allowCredentials`` empty for a
        discoverable credential (the authenticator offers the accounts it holds)."""
        options = generate_authentication_options(
            rp_id=self.id,
            challenge=challenge,
            timeout=self.timeout_ms,
            allow_credentials=_descriptors(allow),
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json_dict(options)

    def verify_registration(self, credential: Any, challenge: bytes) -> VerifiedRegistration:
        """Check a new credential (§7.1): type, challenge, origin, RP id hash, user
        presence, the public key's algorithm.

        Raises:
            CeremonyFailed: any check fails or the structure is malformed.
        """
        try:
            return verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.id,
                expected_origin=list(self.origins),
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise CeremonyFailed(str(exc)) from exc

    def verify_assertion(
        self, credential: Any, challenge: bytes, public_key: bytes, sign_count: int
    ) -> VerifiedAuthentication:
        """Check an assertion (§7.2): type, challenge, origin, RP id hash, user presence,
        the signature over authenticatorData ‖ SHA-256(clientDataJSON), and a signature
        counter above ``sign_count`` (unless both are 0: authenticators without one).

        Raises:
            CeremonyFailed: any check fails or the structure is malformed.
        """
        try:
            return verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.id,
                expected_origin=list(self.origins),
                credential_public_key=public_key,
                credential_current_sign_count=sign_count,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise CeremonyFailed(str(exc)) from exc
