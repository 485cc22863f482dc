"""What a provider tells about the person who signed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atrium.social.providers import Provider


@dataclass(frozen=True)
class ExternalIdentity:
    """An authenticated external identity. ``issuer`` + ``subject`` identify it (OpenID
    Connect Core §5.7); ``email_verified`` is the provider's claim, which counts only for
    a provider trusted for it (``trust_email_verified``)."""

    provider: str
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None = None
    picture: str | None = None


def from_claims(provider: Provider, issuer: str, claims: dict[str, Any]) -> ExternalIdentity:
    """Map OpenID claims (ID token, then UserInfo) through the provider's claim mapping.
    ``email_verified`` is true only for the JSON value ``true`` (a missing claim, ``false``
    or the string ``"true"`` are all false)."""
    email = claims.get(provider.claim("email"))
    name = claims.get(provider.claim("name"))
    picture = claims.get(provider.claim("picture"))
    return ExternalIdentity(
        provider=provider.id,
        issuer=issuer,
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) and email else None,
        email_verified=claims.get(provider.claim("email_verified")) is True,
        name=name if isinstance(name, str) and name else None,
        picture=picture if isinstance(picture, str) and picture else None,
    )
