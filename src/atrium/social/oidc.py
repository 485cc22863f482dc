"""OpenID Connect: discovery, the provider's keys, and ID token validation.

Discovery (OpenID Connect Discovery 1.0 §4) fetches ``<issuer>/.well-known/openid-
configuration`` and requires its ``issuer`` to be exactly the configured one (§4.3).
Documents and JWKS are cached for ``social.metadata_cache_seconds``; an ID token signed
with a key id that is not in the cached JWKS refetches it (at most every
``social.jwks_refresh_min_seconds``), so a provider's key rotation is followed without a
restart.

ID token validation follows OpenID Connect Core §3.1.3.7: the signature against the
provider's JWKS with an asymmetric algorithm the provider announces (``alg: none`` and
every ``HS*`` algorithm are refused, so a public key can never serve as an HMAC secret —
RFC 8725 §2.1, §3.1); the key is chosen by ``kid`` from the JWKS only (never from
``jku``/``jwk``/``x5u`` headers); ``iss`` exactly the issuer; ``aud`` contains the
client id; ``azp``, when present or when there are several audiences, is the client id;
``exp`` in the future and ``iat`` not in the future (``social.clock_skew_seconds``);
``nonce`` equal to the one sent (§3.1.2.1, replay).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key

from atrium.config import SocialSettings
from atrium.core.outbound import http_client
from atrium.social.exceptions import InvalidIdToken, ProviderUnavailable
from atrium.social.providers import Provider

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KTY = {"R": "RSA", "P": "RSA", "E": "EC"}
MAX_ID_TOKEN_BYTES = 16_384
MICROSOFT_TENANT_TEMPLATE = "{tenantid}"

# url -> (fetched at, monotonic seconds; document)
_documents: dict[str, tuple[float, dict[str, Any]]] = {}


async def fetch_json(url: str, settings: SocialSettings) -> dict[str, Any]:
    """GET a JSON object.

    Raises:
        ProviderUnavailable: 502, unreachable, not 200, or not a JSON object.
    """
    try:
        async with http_client(settings.http_timeout_seconds) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"The provider could not be reached ({url}).") from exc
    if response.status_code != 200:
        raise ProviderUnavailable(f"The provider answered {response.status_code} ({url}).")
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"The provider's answer is not JSON ({url}).") from exc
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"The provider's answer is not a JSON object ({url}).")
    return body


async def _cached(url: str, settings: SocialSettings, *, max_age: float) -> dict[str, Any]:
    hit = _documents.get(url)
    if hit is not None and time.monotonic() - hit[0] < max_age:
        return hit[1]
    document = await fetch_json(url, settings)
    _documents[url] = (time.monotonic(), document)
    return document


def _issuer_matches(configured: str, announced: str) -> bool:
    """Exact match, except Microsoft's multi-tenant endpoints (``common``,
    ``organizations``, ``consumers``), whose document announces ``{tenantid}``."""
    if announced == configured:
        return True
    return MICROSOFT_TENANT_TEMPLATE in announced and configured.startswith(
        announced.split(MICROSOFT_TENANT_TEMPLATE)[0]
    )


async def metadata(provider: Provider, settings: SocialSettings) -> dict[str, Any]:
    """The provider's discovery document (cached).

    Raises:
        ProviderUnavailable: 502, unreachable, or its ``issuer`` is not the configured one,
            or it lacks the endpoints of the code flow.
    """
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = await _cached(url, settings, max_age=settings.metadata_cache_seconds)
    announced = document.get("issuer")
    if not isinstance(announced, str) or not _issuer_matches(provider.issuer, announced):
        _documents.pop(url, None)
        raise ProviderUnavailable("The discovery document names another issuer.")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(name), str):
            _documents.pop(url, None)
            raise ProviderUnavailable(f"The discovery document has no {name}.")
    return document


async def _keys(jwks_uri: str, settings: SocialSettings, *, refresh: bool) -> list[dict[str, Any]]:
    max_age = settings.jwks_refresh_min_seconds if refresh else settings.metadata_cache_seconds
    document = await _cached(jwks_uri, settings, max_age=max_age)
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ProviderUnavailable("The provider's JWKS has no keys.")
    return [k for k in keys if isinstance(k, dict)]


def _pick(keys: list[dict[str, Any]], kid: str | None, alg: str) -> dict[str, Any] | None:
    usable = [
        k
        for k in keys
        if k.get("use", "sig") == "sig"
        and ((alg == "EdDSA" and k.get("kty") == "OKP") or k.get("kty") == _KTY.get(alg[0]))
    ]
    if kid is not None:
        return next((k for k in usable if k.get("kid") == kid), None)
    return usable[0] if len(usable) == 1 else None


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_ID_TOKEN_BYTES or token.count(".") != 2:
        raise InvalidIdToken("The ID token is not a signed JWT.")
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError as exc:
        raise InvalidIdToken("The ID token's header is not valid.") from exc
    if not isinstance(header, dict):
        raise InvalidIdToken("The ID token's header is not valid.")
    return header


async def verify_signature(
    token: str, document: dict[str, Any], settings: SocialSettings
) -> dict[str, Any]:
    """The claims of ``token`` once its signature is verified with the provider's key.

    Raises:
        InvalidIdToken: 401, malformed, a refused algorithm, no such key, bad signature.
    """
    header = _header(token)
    alg = header.get("alg")
    announced = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS or alg not in announced:
        raise InvalidIdToken(f"The ID token's algorithm {alg!r} is refused.")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    jwks_uri = document["jwks_uri"]
    jwk = _pick(await _keys(jwks_uri, settings, refresh=False), kid, alg)
    if jwk is None:  # maybe a rotated key: fetch the JWKS again
        jwk = _pick(await _keys(jwks_uri, settings, refresh=True), kid, alg)
    if jwk is None:
        raise InvalidIdToken("The ID token is signed with a key the provider does not publish.")
    try:
        key: Key = import_key(jwk)
        decoded = jwt.decode(token, key, algorithms=[alg])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidIdToken("The ID token's signature is not valid.") from exc
    return dict(decoded.claims)


def check_claims(
    claims: dict[str, Any],
    *,
    provider: Provider,
    issuer: str,
    nonce: str,
    now: datetime,
    skew: int,
) -> None:
    """The claim checks of OpenID Connect Core §3.1.3.7 (steps 2-4, 9-11).

    Raises:
        InvalidIdToken: 401 naming the claim at fault.
    """
    expected = issuer
    if MICROSOFT_TENANT_TEMPLATE in issuer and isinstance(claims.get("tid"), str):
        expected = issuer.replace(MICROSOFT_TENANT_TEMPLATE, claims["tid"])
    if claims.get("iss") != expected or MICROSOFT_TENANT_TEMPLATE in expected:
        raise InvalidIdToken("The ID token's iss is not the provider's.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise InvalidIdToken("The ID token has no valid sub.")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if provider.client_id not in audiences:
        raise InvalidIdToken("The ID token's aud is not this client.")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != provider.client_id:
        raise InvalidIdToken("The ID token's azp is not this client.")
    timestamp = now.timestamp()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp <= timestamp - skew:
        raise InvalidIdToken("The ID token has expired.")
    if not isinstance(iat, int | float) or iat > timestamp + skew:
        raise InvalidIdToken("The ID token's iat is missing or in the future.")
    if not isinstance(claims.get("nonce"), str) or claims["nonce"] != nonce:
        raise InvalidIdToken("The ID token's nonce is not the one of this sign-in.")


async def validate_id_token(
    token: str,
    *,
    provider: Provider,
    document: dict[str, Any],
    nonce: str,
    now: datetime,
    settings: SocialSettings,
) -> dict[str, Any]:
    """The verified claims of an ID token (signature, then claims).

    Raises:
        InvalidIdToken: 401.
        ProviderUnavailable: 502, the JWKS could not be fetched.
    """
    claims = await verify_signature(token, document, settings)
    check_claims(
        claims,
        provider=provider,
        issuer=document["issuer"],
        nonce=nonce,
        now=now,
        skew=settings.clock_skew_seconds,
    )
    return claims
