"""The rules of API keys: who may create one with which scopes, listing and revocation.

A key is shown once, at creation; only its HMAC-SHA256 under the server secret is stored
(:mod:`atrium.core.apikeys`). Its scopes are permission names the owner holds at creation;
at each request it acts with its scopes ∩ the owner's current permissions
(:func:`atrium.rbac.dependencies.require`). Revoking publishes through the principal
cache as a session's revocation does, so every node refuses the key once the request
answers (:mod:`atrium.auth.api_keys`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.apikeys.exceptions import (
    ApiKeyLimitReached,
    ApiKeyNotFound,
    ScopeNotHeld,
    UnknownScope,
)
from atrium.apikeys.repository import ApiKeyRepository
from atrium.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from atrium.audit.service import record
from atrium.context import AppContext
from atrium.core import apikeys
from atrium.errors import ValidationFailed
from atrium.events.service import emit
from atrium.mail.service import Outbox
from atrium.models import ApiKey, User
from atrium.rbac.authorized import Authorized
from atrium.rbac.permissions import is_known
from atrium.rbac.resolver import permission_resolver
from atrium.rbac.service import managed_account
from atrium.users.exceptions import UserNotFound


def key_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        last_used_ip=key.last_used_ip,
    )


class ApiKeyService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.settings = ctx.settings.api_keys
        self.repo = ApiKeyRepository(db)

    async def create(self, user_id: uuid.UUID, body: ApiKeyCreate) -> ApiKeyCreated:
        """Create a key for ``user_id``; the answer carries the key, shown this once.
        Audited (``api_key.created``) and the owner is emailed.

        Raises:
            UnknownScope: 422, a scope is not a permission of the catalogue.
            ScopeNotHeld: 403, a scope is a permission the owner does not hold.
            ApiKeyLimitReached: 409, the owner has ``api_keys.max_per_user`` keys.
            ValidationFailed: 422, ``expires_in_days`` beyond ``max_expires_in_days``.
        """
        scopes = sorted(dict.fromkeys(body.scopes))
        unknown = [s for s in scopes if not is_known(s)]
        if unknown:
            raise UnknownScope(
                f"Unknown scopes: {', '.join(unknown)}.",
                errors=[
                    {"loc": ["body", "scopes"], "type": "unknown_scope", "msg": f"{s} is unknown"}
                    for s in unknown
                ],
            )
        # Grants before any write: resolving them may open a connection of its own, which
        # must not wait on this request's transaction (SQLite's write lock).
        held = (await self.ctx.rbac.grants_of(user_id)).permissions
        missing = [s for s in scopes if s not in held]
        if missing:
            raise ScopeNotHeld(f"The account does not hold: {', '.join(missing)}.")
        days = body.expires_in_days or self.settings.max_expires_in_days
        if days > self.settings.max_expires_in_days:
            limit = self.settings.max_expires_in_days
            raise ValidationFailed(
                f"expires_in_days is at most {limit}.",
                errors=[
                    {
                        "loc": ["body", "expires_in_days"],
                        "type": "less_than_equal",
                        "msg": f"Input should be less than or equal to {limit}",
                    }
                ],
            )
        if await self.repo.count_unrevoked(user_id) >= self.settings.max_per_user:
            raise ApiKeyLimitReached(
                f"An account holds at most {self.settings.max_per_user} API keys; delete one."
            )
        user = await self.db.get(User, user_id)
        if user is None:
            raise UserNotFound("No such user.")
        now = self.ctx.clock.now()
        expires_at = now + timedelta(days=days)
        raw = apikeys.generate()
        key = ApiKey(
            id=uuid.uuid4(),
            user_id=user_id,
            name=body.name,
            prefix=apikeys.display_prefix(raw),
            key_hash=apikeys.digest(raw, self.settings.secret_bytes()),
            scopes=scopes,
            created_at=now,
            expires_at=expires_at,
        )
        await self.repo.add(key)
        details = {"api_key_id": str(key.id), "name": key.name, "prefix": key.prefix}
        await record(
            self.db,
            "api_key.created",
            at=now,
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            details=details | {"scopes": scopes, "expires_at": expires_at.isoformat()},
        )
        await emit(
            self.db,
            "api_key.created",
            subject=user_id,
            actor=user_id,
            data={"api_key_id": key.id, "name": key.name},
            at=now,
        )
        outbox = Outbox(self.db, self.ctx.clock, self.ctx.settings.mail.default_locale)
        await outbox.enqueue(
            "api_key_created",
            to=user.email,
            locale=user.locale,
            context={"name": key.name, "prefix": key.prefix, "scopes": ", ".join(scopes)},
            user_id=user.id,
        )
        return ApiKeyCreated(**key_read(key).model_dump(), key=raw)

    async def list_of(self, user_id: uuid.UUID) -> list[ApiKeyRead]:
        """The unrevoked keys of ``user_id``, newest first (expired ones included)."""
        return [key_read(k) for k in await self.repo.list_unrevoked(user_id)]

    async def revoke(
        self, user_id: uuid.UUID, key_id: uuid.UUID, *, actor_id: uuid.UUID, by_admin: bool
    ) -> None:
        """Revoke a key of ``user_id``: refused on every node once the request answers.
        Audited (``api_key.revoked``, or ``admin.api_key_revoked``).

        Raises:
            ApiKeyNotFound: 404, no unrevoked key ``key_id`` of ``user_id``.
        """
        now = self.ctx.clock.now()
        reason = "revoked_by_admin" if by_admin else "revoked_by_owner"
        key = await self.repo.revoke(user_id, key_id, now, reason)
        if key is None:
            raise ApiKeyNotFound("No such API key.")
        # The key's state shares the sessions' cache namespace (auth/api_keys.py).
        self.ctx.principals.revoke_on_commit(self.db, [key.id])
        await record(
            self.db,
            "admin.api_key_revoked" if by_admin else "api_key.revoked",
            at=now,
            actor_id=actor_id,
            target_type="user",
            target_id=user_id,
            details={"api_key_id": str(key.id), "name": key.name, "prefix": key.prefix},
        )
        await emit(
            self.db,
            "api_key.revoked",
            subject=user_id,
            actor=actor_id,
            data={"api_key_id": key.id, "name": key.name},
            at=now,
        )

    async def managed_user(self, caller: Authorized, user_id: uuid.UUID) -> uuid.UUID:
        """``user_id``, once ``caller`` is found to hold every permission the account has.

        Raises:
            UserNotFound: 404. EscalationRefused: 403, the account is more privileged.
        """
        graph = await permission_resolver(self.ctx).graph()
        user, _ = await managed_account(self.db, caller, user_id, graph)
        return user.id

    async def existing_user(self, user_id: uuid.UUID) -> None:
        """Raises UserNotFound (404) when there is no account ``user_id``."""
        if await self.db.get(User, user_id) is None:
            raise UserNotFound("No such user.")
