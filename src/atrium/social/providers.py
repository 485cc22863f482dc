"""The identity providers in force: those of ``social.providers`` and those stored by the
admin API (``identity_provider``), resolved to one shape with their presets applied.

Presets (docs/social-login.md): ``google`` (issuer ``https://accounts.google.com``),
``microsoft`` (issuer ``https://login.microsoftonline.com/<tenant>/v2.0``, tenant
``common`` by default) and the ``github`` kind (GitHub's OAuth endpoints and REST API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.config import IdentityProviderSettings, Settings
from atrium.models import IdentityProvider
from atrium.social.exceptions import InvalidProviderConfig, ProviderNotFound
from atrium.social.repository import ProviderRepository
from atrium.social.secret_box import decrypt_secret

OIDC_SCOPES = ("openid", "email", "profile")
GITHUB_SCOPES = ("read:user", "user:email")
GITHUB_AUTHORIZE = "https://github.com/login/oauth/authorize"
GITHUB_TOKEN = "https://github.com/login/oauth/access_token"  # noqa: S105  # nosec B105
GITHUB_API = "https://api.github.com"
GITHUB_ISSUER = "https://github.com"
DISPLAY_NAMES = {"google": "Google", "microsoft": "Microsoft", "github": "GitHub"}
# Local field -> claim, overridable per provider with claim_mapping.
DEFAULT_CLAIMS = {
    "email": "email",
    "email_verified": "email_verified",
    "name": "name",
    "picture": "picture",
}


@dataclass(frozen=True)
class Provider:
    """A provider ready to use. ``issuer`` is the OpenID issuer (kind ``oidc``) or the
    identity namespace of a GitHub installation; ``source`` is ``settings`` or
    ``admin``."""

    id: str
    kind: str
    display_name: str
    client_id: str
    client_secret: str | None
    issuer: str
    scopes: tuple[str, ...]
    trust_email_verified: bool
    enabled: bool
    source: str
    preset: str | None = None
    tenant: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    api_base_url: str | None = None
    claim_mapping: dict[str, str] = field(default_factory=dict)

    def claim(self, name: str) -> str:
        """The claim that carries the local field ``name``."""
        return self.claim_mapping.get(name) or DEFAULT_CLAIMS[name]


def resolve(config: dict[str, Any], *, secret: str | None, source: str) -> Provider:
    """Apply the presets to one provider's configuration (the fields of
    :class:`~atrium.config.IdentityProviderSettings`).

    Raises:
        InvalidProviderConfig: 422, an OpenID provider without an issuer.
    """
    kind = config.get("kind") or "oidc"
    preset = config.get("preset")
    issuer = config.get("issuer")
    tenant = config.get("tenant")
    if preset == "google":
        issuer = issuer or "https://accounts.google.com"
    elif preset == "microsoft":
        tenant = tenant or "common"
        issuer = issuer or f"https://login.microsoftonline.com/{tenant}/v2.0"
    if kind == "github":
        issuer = issuer or GITHUB_ISSUER
    if not issuer:
        raise InvalidProviderConfig("An OpenID Connect provider needs an issuer (or a preset).")
    scopes = config.get("scopes") or (GITHUB_SCOPES if kind == "github" else OIDC_SCOPES)
    if kind == "oidc" and "openid" not in scopes:
        scopes = ["openid", *scopes]
    return Provider(
        id=config["id"],
        kind=kind,
        display_name=config.get("display_name")
        or DISPLAY_NAMES.get(preset or kind)
        or config["id"],
        client_id=config["client_id"],
        client_secret=secret,
        issuer=issuer.rstrip("/") if kind == "github" else issuer,
        scopes=tuple(scopes),
        trust_email_verified=bool(config.get("trust_email_verified")),
        enabled=bool(config.get("enabled", True)),
        source=source,
        preset=preset,
        tenant=tenant,
        authorization_endpoint=config.get("authorization_endpoint")
        or (GITHUB_AUTHORIZE if kind == "github" else None),
        token_endpoint=config.get("token_endpoint") or (GITHUB_TOKEN if kind == "github" else None),
        api_base_url=(config.get("api_base_url") or GITHUB_API).rstrip("/")
        if kind == "github"
        else None,
        claim_mapping=dict(config.get("claim_mapping") or {}),
    )


def from_settings(item: IdentityProviderSettings) -> Provider:
    data = item.model_dump(exclude={"client_secret"})
    secret = item.client_secret.get_secret_value() if item.client_secret else None
    return resolve(data, secret=secret, source="settings")


def from_row(row: IdentityProvider, settings: Settings) -> Provider:
    data = {
        **row.settings,
        "id": row.slug,
        "kind": row.kind,
        "display_name": row.display_name,
        "client_id": row.client_id,
        "trust_email_verified": row.trust_email_verified,
        "enabled": row.enabled,
    }
    secret = (
        decrypt_secret(settings, row.client_secret_encrypted)
        if row.client_secret_encrypted
        else None
    )
    return resolve(data, secret=secret, source="admin")


async def all_providers(db: AsyncSession, settings: Settings) -> list[Provider]:
    """Every provider, those of the settings first (they win over a stored one of the
    same id), then the stored ones by id."""
    out = [from_settings(p) for p in settings.social.providers]
    taken = {p.id for p in out}
    rows = await ProviderRepository(db).list()
    for row in rows:
        if row.slug not in taken:
            try:
                out.append(from_row(row, settings))
            except InvalidProviderConfig:
                continue
    return out


async def enabled_providers(db: AsyncSession, settings: Settings) -> list[Provider]:
    """The providers offered on the login page."""
    return [p for p in await all_providers(db, settings) if p.enabled]


async def get_provider(
    db: AsyncSession, settings: Settings, provider_id: str, *, enabled: bool = True
) -> Provider:
    """One provider by id.

    Raises:
        ProviderNotFound: 404, unknown (or disabled, with ``enabled``).
    """
    for item in settings.social.providers:
        if item.id == provider_id:
            provider = from_settings(item)
            break
    else:
        row = await ProviderRepository(db).get(provider_id)
        if row is None:
            raise ProviderNotFound(f"No identity provider {provider_id!r}.")
        provider = from_row(row, settings)
    if enabled and not provider.enabled:
        raise ProviderNotFound(f"No identity provider {provider_id!r}.")
    return provider
