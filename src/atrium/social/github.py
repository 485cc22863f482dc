"""GitHub as an identity provider: OAuth 2.0 (with PKCE) and its REST API.

GitHub is not an OpenID provider: the identity is ``<issuer>`` + the numeric user id of
``GET /user`` (never the login, which its owner can change). The email is the *primary*
address of ``GET /user/emails`` with its ``verified`` flag; other addresses, verified or
not, never count, and neither does the public ``email`` of ``/user``.
"""

from __future__ import annotations

from typing import Any

import httpx

from atrium.config import SocialSettings
from atrium.core.outbound import http_client
from atrium.social.exceptions import ProviderUnavailable
from atrium.social.identity import ExternalIdentity
from atrium.social.providers import Provider

API_VERSION = "2022-11-28"


async def _get(client: httpx.AsyncClient, url: str, token: str) -> Any:
    try:
        response = await client.get(
            url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
        )
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("GitHub's API could not be reached.") from exc
    if response.status_code != 200:
        raise ProviderUnavailable(f"GitHub's API answered {response.status_code}.")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderUnavailable("GitHub's API answered something that is not JSON.") from exc


def primary_email(emails: Any) -> tuple[str | None, bool]:
    """The primary address of ``/user/emails`` and whether GitHub verified it."""
    if not isinstance(emails, list):
        return None, False
    for item in emails:
        if isinstance(item, dict) and item.get("primary") is True:
            email = item.get("email")
            if isinstance(email, str) and email:
                return email, item.get("verified") is True
    return None, False


async def github_identity(
    provider: Provider, access_token: str, settings: SocialSettings
) -> ExternalIdentity:
    """The account behind ``access_token``.

    Raises:
        ProviderUnavailable: 502, the API failed or answered without a user id.
    """
    api = provider.api_base_url or ""
    async with http_client(settings.http_timeout_seconds) as client:
        user = await _get(client, f"{api}/user", access_token)
        emails = await _get(client, f"{api}/user/emails", access_token)
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ProviderUnavailable("GitHub's API gave no user id.")
    email, verified = primary_email(emails)
    name = user.get("name") or user.get("login")
    return ExternalIdentity(
        provider=provider.id,
        issuer=provider.issuer,
        subject=str(user_id),
        email=email,
        email_verified=verified,
        name=name if isinstance(name, str) else None,
        picture=user.get("avatar_url") if isinstance(user.get("avatar_url"), str) else None,
    )
