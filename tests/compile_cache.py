"""One compilation of each SQL statement per test process and database backend, whichever
engine runs it.

SQLAlchemy (2.1) keeps compiled statements in a cache on each engine (and one on each
mapper, for the flush's INSERT/UPDATE/DELETE), keyed by the statement's structure *and the
dialect object*. The server creates one engine per process and compiles each statement
once; the test suite creates an engine per test (~3,000 of them), so every test compiled
again each statement it ran: ~12 ms of a first registration and login.

:func:`install` gives every engine and mapper of this process caches that key a statement
by the dialect's class and the server version it detected instead of the dialect object.
Every engine of a test process is made by ``atrium.core.db.create_engine`` from the same
settings but the URL, so two dialects of one class and server version compile a
statement to the same SQL with the same parameter processing. Each backend (SQLite,
PostgreSQL) keeps its own entries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import base
from sqlalchemy.orm import Mapper
from sqlalchemy.util import LRUCache


class DialectNeutralCache:
    """A compiled-statement cache whose keys name the dialect by class and server version.

    SQLAlchemy calls ``get`` and item assignment with keys of the shape ``(dialect,
    cache_key, column_keys, schema_translated, for_executemany)``
    (``ClauseElement._compile_w_cache``)."""

    def __init__(self, size: int) -> None:
        self._entries: LRUCache[Any, Any] = LRUCache(size)
        self.stores = 0  # SQLAlchemy stores only what it has just compiled (a miss)

    @staticmethod
    def _neutral(key: tuple[Any, ...]) -> tuple[Any, ...]:
        dialect = key[0]
        return (type(dialect), dialect.server_version_info, *key[1:])

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        return self._entries.get(self._neutral(key), default)

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self.stores += 1
        self._entries[self._neutral(key)] = value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


_ENGINE_CACHE = DialectNeutralCache(5000)
_MAPPER_CACHES: dict[Mapper[Any], DialectNeutralCache] = {}


def compilations() -> tuple[int, int]:
    """How many statements this process has compiled since :func:`install`: by the
    engines' cache, and by the mappers' (the flush's INSERT, UPDATE and DELETE)."""
    return _ENGINE_CACHE.stores, sum(cache.stores for cache in _MAPPER_CACHES.values())


def install() -> None:
    """Share compiled statements between the engines and mappers of this process.

    Raises:
        RuntimeError: SQLAlchemy's internals are not those this cache was written for.
    """
    if "_compiled_cache" not in base.Engine.__annotations__ or not hasattr(
        Mapper, "_compiled_cache"
    ):
        raise RuntimeError("tests/compile_cache.py: SQLAlchemy's statement caches changed")

    # Engine.__init__ assigns its own LRU cache (or None when query_cache_size=0): keep
    # what it assigned only to know whether caching is on.
    def engine_cache(self: base.Engine) -> DialectNeutralCache | None:
        return None if self.__dict__.get("_own_compiled_cache") is None else _ENGINE_CACHE

    def set_engine_cache(self: base.Engine, value: Any) -> None:
        self.__dict__["_own_compiled_cache"] = value

    def mapper_cache(self: Mapper[Any]) -> DialectNeutralCache:
        cache = _MAPPER_CACHES.get(self)
        if cache is None:
            cache = _MAPPER_CACHES[self] = DialectNeutralCache(500)
        return cache

    base.Engine._compiled_cache = property(engine_cache, set_engine_cache)  # type: ignore[assignment]
    Mapper._compiled_cache = property(mapper_cache)  # type: ignore[assignment,method-assign]
