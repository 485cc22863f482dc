"""The authorization code flow with a provider (RFC 6749 §4.1 + RFC 7636 PKCE S256 +
OpenID Connect Core §3.1), protocol messages built with authlib.

``begin`` stores a ``state`` ticket (single use, 10 minutes) holding the ``nonce``, the
PKCE ``code_verifier`` and the SHA-256 of this browser's binding cookie; ``complete``
claims it once, requires the same browser (RFC 9700 §4.7: a response injected into
another browser is refused — the login CSRF of CVE-2025-68481), checks the response's
``iss`` (RFC 9207, mix-up defence, RFC 9700 §4.4), exchanges the code with the verifier,
and validates the ID token (:mod:`atrium.social.oidc`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core.opaque import new_token, token_digest
from atrium.core.outbound import http_client
from atrium.social import oidc
from atrium.social.exceptions import (
    AuthorizationDenied,
    InvalidIdToken,
    InvalidOAuthState,
    IssuerMismatch,
    ProviderUnavailable,
)
from atrium.social.github import github_identity
from atrium.social.identity import ExternalIdentity, from_claims
from atrium.social.providers import Provider, get_provider
from atrium.social.repository import TicketRepository

STATE_TTL_SECONDS = 600
CALLBACK_PATH = "/api/v1/auth/oauth/{provider}/callback"


def callback_uri(ctx: AppContext, provider_id: str) -> str:
    """The redirect URI to register at the provider (exact string, RFC 9700 §4.1.3)."""
    base = ctx.settings.social.callback_base_url or ctx.settings.mail.link_base_url
    return base.rstrip("/") + CALLBACK_PATH.format(provider=provider_id)


def binding_digest(binding: str) -> str:
    return token_digest(binding).hex()


@dataclass(frozen=True)
class FlowIntent:
    """Where the flow goes once the identity is known: ``redirect_to`` (a path of the
    hosted pages, or an app's redirect URI with its PKCE ``code_challenge``) and, when an
    account is linking a provider while signed in, ``link_user_id``."""

    redirect_to: str
    code_challenge: str | None = None
    link_user_id: str | None = None


async def begin(
    db: AsyncSession, ctx: AppContext, provider: Provider, intent: FlowIntent, binding: str
) -> str:
    """Store the state ticket and answer the provider's authorization URL.

    Raises:
        ProviderUnavailable: 502, discovery failed.
    """
    now = ctx.clock.now()
    state, nonce, verifier = new_token(), new_token(), new_token()
    if provider.kind == "oidc":
        endpoint = (await oidc.metadata(provider, ctx.settings.social))["authorization_endpoint"]
    else:
        endpoint = provider.authorization_endpoint or ""
    tickets = TicketRepository(db)
    await tickets.purge_expired(now - timedelta(days=1))
    await tickets.add(
        "state",
        token_digest(state),
        {
            "provider": provider.id,
            "nonce": nonce,
            "code_verifier": verifier,
            "binding": binding_digest(binding),
            "redirect_to": intent.redirect_to,
            "code_challenge": intent.code_challenge,
            "link_user_id": intent.link_user_id,
        },
        now,
        STATE_TTL_SECONDS,
    )
    extra: dict[str, str] = {"nonce": nonce} if provider.kind == "oidc" else {}
    url: str = prepare_grant_uri(
        endpoint,
        provider.client_id,
        "code",
        redirect_uri=callback_uri(ctx, provider.id),
        scope=" ".join(provider.scopes),
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        **extra,
    )
    return url


async def _claim_state(
    db: AsyncSession, ctx: AppContext, provider_id: str, state: str | None, binding: str | None
) -> dict[str, Any]:
    if not state or len(state) > 256:
        raise InvalidOAuthState("The response carries no valid state.")
    payload = await TicketRepository(db).use("state", token_digest(state), ctx.clock.now())
    if payload is None:
        raise InvalidOAuthState("This sign-in attempt is unknown, used or expired; start again.")
    if not binding or not hmac.compare_digest(binding_digest(binding), payload["binding"]):
        raise InvalidOAuthState("This sign-in was started in another browser; start again.")
    if payload["provider"] != provider_id:
        raise InvalidOAuthState("This sign-in was started with another provider.")
    return payload


async def _exchange(
    ctx: AppContext, provider: Provider, endpoint: str, code: str, verifier: str, auth: str
) -> dict[str, Any]:
    body = prepare_token_request(
        "authorization_code",
        code=code,
        redirect_uri=callback_uri(ctx, provider.id),
        code_verifier=verifier,
    )
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    if provider.client_secret is None:
        body += "&client_id=" + httpx.QueryParams({"c": provider.client_id})["c"]
    else:
        _uri, headers, body = ClientAuth(provider.client_id, provider.client_secret, auth).prepare(
            "POST", endpoint, headers, body
        )
    try:
        async with http_client(ctx.settings.social.http_timeout_seconds) as client:
            response = await client.post(endpoint, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("The provider's token endpoint could not be reached.") from exc
    try:
        token = response.json()
    except ValueError as exc:
        raise ProviderUnavailable("The token endpoint answered something not JSON.") from exc
    if not isinstance(token, dict) or response.status_code != 200 or "error" in token:
        error = token.get("error") if isinstance(token, dict) else None
        raise AuthorizationDenied(
            f"The provider refused the code ({error or response.status_code})."
        )
    if not isinstance(token.get("access_token"), str):
        raise ProviderUnavailable("The token endpoint gave no access token.")
    return token


def _auth_method(document: dict[str, Any]) -> str:
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"


def _check_response_issuer(expected: str, given: str | None, required: bool) -> None:
    """RFC 9207 §2.4: an ``iss`` that is not the provider's is refused, as is a missing one
    from a provider that announces ``authorization_response_iss_parameter_supported``."""
    if given is None:
        if required:
            raise IssuerMismatch("The authorization response has no iss.")
        return
    if oidc.MICROSOFT_TENANT_TEMPLATE in expected:
        prefix, _sep, suffix = expected.partition(oidc.MICROSOFT_TENANT_TEMPLATE)
        if given.startswith(prefix) and given.endswith(suffix):
            return
    elif hmac.compare_digest(given.encode(), expected.encode()):
        return
    raise IssuerMismatch("The authorization response comes from another issuer.")


async def complete(
    db: AsyncSession,
    ctx: AppContext,
    provider_id: str,
    params: dict[str, str],
    binding: str | None,
) -> tuple[ExternalIdentity, dict[str, Any]]:
    """The identity behind an authorization response, and the state's payload.

    Raises:
        InvalidOAuthState: 400, unknown/used/expired state, another browser or provider.
        IssuerMismatch: 400, the response's ``iss`` is not the provider's (RFC 9207).
        AuthorizationDenied: 400, the provider answered an error or refused the code.
        InvalidIdToken: 401, the ID token fails a check of OpenID Connect Core §3.1.3.7.
        ProviderUnavailable: 502.
    """
    payload = await _claim_state(db, ctx, provider_id, params.get("state"), binding)
    provider = await get_provider(db, ctx.settings, provider_id)
    settings = ctx.settings.social
    if provider.kind == "oidc":
        document = await oidc.metadata(provider, settings)
        required = document.get("authorization_response_iss_parameter_supported") is True
        _check_response_issuer(document["issuer"], params.get("iss"), required)
    else:
        document = {}
        _check_response_issuer(provider.issuer, params.get("iss"), False)
    if "error" in params or not params.get("code"):
        raise AuthorizationDenied(f"The provider answered {params.get('error', 'no code')!r}.")
    code = params["code"]
    if provider.kind == "github":
        token = await _exchange(
            ctx,
            provider,
            provider.token_endpoint or "",
            code,
            payload["code_verifier"],
            "client_secret_post",
        )
        identity = await github_identity(provider, token["access_token"], settings)
        return identity, payload
    token = await _exchange(
        ctx,
        provider,
        document["token_endpoint"],
        code,
        payload["code_verifier"],
        _auth_method(document),
    )
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise InvalidIdToken("The token response has no ID token.")
    claims = await oidc.validate_id_token(
        id_token,
        provider=provider,
        document=document,
        nonce=payload["nonce"],
        now=ctx.clock.now(),
        settings=settings,
    )
    if provider.claim("email") not in claims and isinstance(document.get("userinfo_endpoint"), str):
        info = await _userinfo(ctx, document["userinfo_endpoint"], token)
        if info.get("sub") == claims["sub"]:  # §5.3.4: else the answer is not about this user
            claims = {**info, **claims}
    return from_claims(provider, claims["iss"], claims), payload


async def _userinfo(ctx: AppContext, endpoint: str, token: dict[str, Any]) -> dict[str, Any]:
    """UserInfo claims (OpenID Connect Core §5.3); only ``sub`` is checked here, and the
    ID token's claims win over these."""
    try:
        async with http_client(ctx.settings.social.http_timeout_seconds) as client:
            response = await client.get(
                endpoint, headers={"Authorization": f"Bearer {token['access_token']}"}
            )
        info = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}
