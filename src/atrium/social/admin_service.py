"""Identity providers managed through the admin API (``identity_providers:manage``).

Providers of ``social.providers`` are listed too (``source: settings``) but change only
with the settings. Client secrets are write-only: stored encrypted
(:mod:`atrium.social.secret_box`), never returned, never in the audit trail.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.config import IdentityProviderSettings
from atrium.context import AppContext
from atrium.errors import ValidationFailed
from atrium.models import IdentityProvider
from atrium.rbac.authorized import Authorized
from atrium.social.exceptions import (
    ProviderExists,
    ProviderNotFound,
    ProviderReadOnly,
)
from atrium.social.flow import callback_uri
from atrium.social.providers import Provider, all_providers, from_row, resolve
from atrium.social.repository import ProviderRepository
from atrium.social.schemas import ProviderRead
from atrium.social.secret_box import encrypt_secret

# Stored in the row's JSON ``settings``; the rest are columns.
_JSON_FIELDS = (
    "preset",
    "issuer",
    "tenant",
    "authorization_endpoint",
    "token_endpoint",
    "api_base_url",
    "scopes",
    "claim_mapping",
)


class ProviderAdminService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = ProviderRepository(db)

    def read(self, provider: Provider, *, has_secret: bool) -> ProviderRead:
        return ProviderRead(
            id=provider.id,
            kind=provider.kind,
            preset=provider.preset,
            display_name=provider.display_name,
            issuer=provider.issuer,
            tenant=provider.tenant,
            authorization_endpoint=provider.authorization_endpoint,
            token_endpoint=provider.token_endpoint,
            api_base_url=provider.api_base_url,
            client_id=provider.client_id,
            has_client_secret=has_secret,
            scopes=list(provider.scopes),
            claim_mapping=provider.claim_mapping,
            trust_email_verified=provider.trust_email_verified,
            enabled=provider.enabled,
            source=provider.source,
            redirect_uri=callback_uri(self.ctx, provider.id),
        )

    async def list_all(self) -> list[ProviderRead]:
        """Every provider, those of the settings first."""
        stored = {row.slug: row for row in await self.repo.list()}
        return [
            self.read(
                p,
                has_secret=p.client_secret is not None
                or (p.source == "admin" and stored[p.id].client_secret_encrypted is not None),
            )
            for p in await all_providers(self.db, self.ctx.settings)
        ]

    async def get(self, provider_id: str) -> ProviderRead:
        """Raises: ProviderNotFound: 404."""
        for item in await self.list_all():
            if item.id == provider_id:
                return item
        raise ProviderNotFound(f"No identity provider {provider_id!r}.")

    def _in_settings(self, provider_id: str) -> bool:
        return any(p.id == provider_id for p in self.ctx.settings.social.providers)

    async def create(self, caller: Authorized, config: IdentityProviderSettings) -> ProviderRead:
        """Store a new provider.

        Raises:
            ProviderExists: 409, the id is taken (stored or in the settings).
            InvalidProviderConfig: 422, an OpenID provider without an issuer or preset.
            SecretKeyMissing: 409, a secret in production without ``social.secret_keys``.
        """
        data = config.model_dump(exclude={"client_secret"})
        resolve(data, secret=None, source="admin")  # InvalidProviderConfig before storing
        if self._in_settings(config.id):
            raise ProviderExists(f"The provider {config.id!r} is configured in the settings.")
        now = self.ctx.clock.now()
        secret = config.client_secret.get_secret_value() if config.client_secret else None
        row = IdentityProvider(
            id=uuid.uuid4(),
            slug=config.id,
            kind=config.kind,
            display_name=config.display_name or resolve(data, secret=None, source="").display_name,
            client_id=config.client_id,
            client_secret_encrypted=encrypt_secret(self.ctx.settings, secret) if secret else None,
            settings={k: data[k] for k in _JSON_FIELDS if data.get(k) is not None},
            trust_email_verified=config.trust_email_verified,
            enabled=config.enabled,
            created_at=now,
            updated_at=now,
        )
        if not await self.repo.add(row):
            raise ProviderExists(f"The provider {config.id!r} exists.")
        await self._audit(
            caller, "identity_provider.created", config.id, sorted(config.model_fields_set)
        )
        return self.read(from_row(row, self.ctx.settings), has_secret=secret is not None)

    async def update(
        self, caller: Authorized, provider_id: str, changes: dict[str, Any]
    ) -> ProviderRead:
        """Change a stored provider (``changes``: fields of the provider, ``client_secret``
        replaces the secret, ``null`` removes it).

        Raises:
            ProviderNotFound: 404. ProviderReadOnly: 409, a provider of the settings.
            ValidationFailed: 422, the result is not a valid provider.
        """
        row = await self._stored(provider_id)
        current = {
            **row.settings,
            "id": row.slug,
            "kind": row.kind,
            "display_name": row.display_name,
            "client_id": row.client_id,
            "trust_email_verified": row.trust_email_verified,
            "enabled": row.enabled,
        }
        secret_given = "client_secret" in changes
        secret = changes.pop("client_secret", None)
        try:
            config = IdentityProviderSettings.model_validate({**current, **changes})
        except ValidationError as exc:
            raise ValidationFailed(
                "The provider would not be valid.",
                errors=[
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors()
                ],
            ) from exc
        data = config.model_dump(exclude={"client_secret"})
        resolve(data, secret=None, source="admin")
        row.kind = config.kind
        row.display_name = config.display_name or row.display_name
        row.client_id = config.client_id
        row.settings = {k: data[k] for k in _JSON_FIELDS if data.get(k) is not None}
        row.trust_email_verified = config.trust_email_verified
        row.enabled = config.enabled
        if secret_given:
            row.client_secret_encrypted = (
                encrypt_secret(self.ctx.settings, secret) if secret else None
            )
        row.updated_at = self.ctx.clock.now()
        await self.db.flush()
        fields = sorted(set(changes) | ({"client_secret"} if secret_given else set()))
        await self._audit(caller, "identity_provider.updated", provider_id, fields)
        return self.read(
            from_row(row, self.ctx.settings), has_secret=row.client_secret_encrypted is not None
        )

    async def delete(self, caller: Authorized, provider_id: str) -> None:
        """Remove a stored provider; its linked identities stay (they sign in again if a
        provider of the same issuer is configured).

        Raises:
            ProviderNotFound: 404. ProviderReadOnly: 409.
        """
        row = await self._stored(provider_id)
        await self.repo.delete(row)
        await self._audit(caller, "identity_provider.deleted", provider_id, [])

    async def _stored(self, provider_id: str) -> IdentityProvider:
        if self._in_settings(provider_id):
            raise ProviderReadOnly("This provider is configured in the settings; change them.")
        row = await self.repo.get(provider_id)
        if row is None:
            raise ProviderNotFound(f"No identity provider {provider_id!r}.")
        return row

    async def _audit(
        self, caller: Authorized, action: str, provider_id: str, fields: list[str]
    ) -> None:
        await record(
            self.db,
            action,
            at=self.ctx.clock.now(),
            actor_id=caller.user_id,
            target_type="identity_provider",
            target_id=provider_id,
            details={"provider": provider_id, "fields": fields},
        )
