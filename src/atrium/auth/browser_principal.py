"""The principal behind a browser's session cookie (the hosted pages), resolved through
the same cache as an access token's (:mod:`atrium.auth.principal`).

:meth:`SessionStore.resolve_cookie` reads the same entries: the session's state (so a
revocation, published by :meth:`PrincipalStore.revoke_on_commit`, signs the browser out
on every node at once) and the user's snapshot, plus one entry of the cookie's
own facts (its session, the session's assurance and lifetimes). A change to a session that
a cached cookie entry could miss — its token used or retired, its assurance raised — is
published with :meth:`SessionStore.cookie_session_changed_on_commit`: a pending marker,
written before the commit as for a revocation and left until it expires, makes every node
read that session's cookies from the database meanwhile.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.auth.principal import (
    _ACTIVE,
    _PENDING,
    _REVOKED,
    Principal,
    PrincipalStore,
    log,
    user_read,
)
from atrium.auth.repository import SessionRepository
from atrium.config import Settings
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.cache import Cache, CacheError
from atrium.core.db import after_rollback, before_commit
from atrium.core.opaque import token_digest
from atrium.core.tokens import Assurance
from atrium.models import UserStatus
from atrium.users.grants import role_names_of


@dataclasses.dataclass(frozen=True, slots=True)
class CookieSession:
    """The session behind a browser's session cookie, as the pages need it (times are
    aware UTC datetimes; ``aal``/``amr``/``auth_time`` are the session's assurance)."""

    id: uuid.UUID
    user_id: uuid.UUID
    aal: int
    amr: tuple[str, ...]
    auth_time: datetime
    expires_at: datetime
    last_used_at: datetime

    @property
    def assurance(self) -> Assurance:
        return Assurance.of(self.aal, self.amr, self.auth_time)

    def dumps(self) -> bytes:
        return json.dumps(
            [
                str(self.id),
                str(self.user_id),
                self.aal,
                list(self.amr),
                self.auth_time.timestamp(),
                self.expires_at.timestamp(),
                self.last_used_at.timestamp(),
            ]
        ).encode()

    @classmethod
    def loads(cls, raw: bytes) -> CookieSession:
        """Raises ValueError (or TypeError) for an entry that is not one."""
        sid, uid, aal, amr, auth_time, expires_at, last_used_at = json.loads(raw)
        return cls(
            id=uuid.UUID(sid),
            user_id=uuid.UUID(uid),
            aal=int(aal),
            amr=tuple(str(m) for m in amr),
            auth_time=datetime.fromtimestamp(auth_time, UTC),
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            last_used_at=datetime.fromtimestamp(last_used_at, UTC),
        )


class SessionStore(PrincipalStore):
    """The :class:`PrincipalStore` that also resolves browsers' session cookies: one store,
    one cache, one revocation protocol for both ways of authenticating."""

    def __init__(
        self,
        cache: Cache,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        super().__init__(cache, sessionmaker, settings)
        self._idle_ttl = timedelta(seconds=settings.auth.refresh_token_idle_ttl_seconds)

    @staticmethod
    def _cookie_key(digest: bytes) -> str:
        return f"cookie:{digest.hex()}"

    @staticmethod
    def _cookie_changed_key(session_id: uuid.UUID) -> str:
        return f"cookiechg:{session_id}"

    async def resolve_cookie(
        self, raw_token: str, now: datetime, *, touch_after_seconds: float
    ) -> tuple[CookieSession, Principal] | None:
        """The session and principal of a browser's session cookie (``raw_token``, the
        refresh token it holds), or None: unknown or used token, session revoked, past its
        idle (``auth.refresh_token_idle_ttl_seconds`` from ``last_used_at``) or absolute
        lifetime, account not active.

        Cost when cached: two cache reads (the cookie's entry; then the session's state,
        the user's snapshot and the session's change marker in one ``MGET``) and no
        statement. Otherwise one query for the token, its session and account, one for the
        role names, and — when ``last_used_at`` is ``touch_after_seconds`` old or more —
        its update in a short transaction of its own; the entries are then cached for
        ``principal_cache_ttl_seconds``. A cached entry never decides that a session is
        idle: a session due for its touch is read from the database.
        """
        digest = token_digest(raw_token)
        ckey = self._cookie_key(digest)
        seen: bytes | None = None
        if self._ttl > 0:
            try:
                (seen,) = await self._cache.get_many([ckey])
                if seen is not None:
                    facts = CookieSession.loads(seen)
                    state, snapshot, changed = await self._cache.get_many(
                        [
                            self._session_key(facts.id),
                            self._user_key(facts.user_id),
                            self._cookie_changed_key(facts.id),
                        ]
                    )
                    if state == _REVOKED:
                        metrics.CACHE_LOOKUPS.labels("principal", "hit").inc()
                        return None
                    age = (now - facts.last_used_at).total_seconds()
                    if (
                        state == _ACTIVE
                        and snapshot is not None
                        and changed is None
                        and facts.expires_at > now
                        and age < touch_after_seconds
                        and facts.last_used_at + self._idle_ttl > now
                    ):
                        metrics.CACHE_LOOKUPS.labels("principal", "hit").inc()
                        principal = Principal(
                            user_id=facts.user_id,
                            session_id=facts.id,
                            user_json=snapshot,
                            assurance=facts.assurance,
                        )
                        return facts, principal
            except CacheError as exc:
                log.warning("principal_cache_unavailable", error=str(exc))
            except (ValueError, TypeError):
                log.warning("cookie_cache_entry_unreadable")
            metrics.CACHE_LOOKUPS.labels("principal", "miss").inc()
        return await self._load_cookie(digest, ckey, seen, now, touch_after_seconds)

    async def _load_cookie(
        self, digest: bytes, ckey: str, seen: bytes | None, now: datetime, touch_after: float
    ) -> tuple[CookieSession, Principal] | None:
        async with self._sessionmaker() as db:
            sessions = SessionRepository(db)
            row = await sessions.get_refresh_token(digest)
            if row is None:
                return None
            token, session, user = row
            if (
                token.used_at is not None
                or session.revoked_at is not None
                or session.expires_at <= now
                or session.last_used_at + self._idle_ttl <= now
                or user.status != UserStatus.active.value
                or user.deleted_at is not None
            ):
                return None
            facts = CookieSession(
                id=session.id,
                user_id=user.id,
                aal=session.aal,
                amr=tuple(session.amr),
                auth_time=session.auth_time,
                expires_at=session.expires_at,
                last_used_at=session.last_used_at,
            )
            snapshot = user_read(user, await role_names_of(db, user.id))
            if (now - session.last_used_at).total_seconds() >= touch_after:
                await sessions.touch_session(session.id, now)
                await db.commit()
                facts = dataclasses.replace(facts, last_used_at=now)
        principal = Principal(
            user_id=facts.user_id,
            session_id=facts.id,
            user_json=snapshot.model_dump_json().encode(),
            assurance=facts.assurance,
            user=snapshot,
        )
        if self._ttl > 0:
            ttl = min(self._ttl, (facts.expires_at - now).total_seconds())
            try:
                if seen is not None:
                    await self._cache.delete_if([ckey], seen)
                await self._cache.add(ckey, facts.dumps(), ttl)
                await self._cache.add(self._session_key(facts.id), _ACTIVE, ttl)
                await self._cache.set(self._user_key(facts.user_id), principal.user_json, self._ttl)
            except CacheError as exc:
                log.warning("principal_cache_unavailable", error=str(exc))
        return facts, principal

    def cookie_session_changed_on_commit(
        self, db: AsyncSession, session_ids: Iterable[uuid.UUID], *, strict: bool = True
    ) -> None:
        """Publish with ``db``'s transaction a change to ``session_ids`` that a cached
        cookie entry would not show (a refresh token used or retired, the assurance
        changed): a pending marker per session written before the commit, kept after it
        until no entry cached earlier can be left, withdrawn after a rollback. Meanwhile
        every node reads those sessions' cookies from the database.

        When the marker cannot be written: ``strict`` raises :class:`RevocationUnavailable`
        (503, rolled back), as a revocation does; otherwise the change goes ahead and other
        nodes may still accept a cached cookie for ``principal_cache_ttl_seconds`` (for a
        change that takes nothing away from the cookie's holder, e.g. the API refreshing
        a token).
        """
        ids = list(dict.fromkeys(session_ids))
        if not ids or self._ttl <= 0:
            return
        keys = [self._cookie_changed_key(sid) for sid in ids]
        marker = _PENDING + uuid.uuid4().hex.encode()
        mark = self._mark_pending if strict else self._try_mark_pending
        before_commit(db, functools.partial(mark, keys, marker))
        after_rollback(db, functools.partial(self._withdraw, keys, marker))

    async def _try_mark_pending(self, keys: list[str], marker: bytes) -> None:
        try:
            await self._cache.set_many(dict.fromkeys(keys, marker), self._tombstone_ttl)
        except CacheError as exc:
            log.warning("cookie_change_not_published", sessions=len(keys), error=str(exc))


def session_store(ctx: AppContext) -> SessionStore:
    """The application's store (``ctx.principals``) with its browser-cookie operations."""
    store = ctx.principals
    assert isinstance(store, SessionStore)
    return store
