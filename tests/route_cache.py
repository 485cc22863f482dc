"""One build of each API route per test process, whichever app includes it.

FastAPI (0.165) builds the handler of an included route, its dependency graph and the
pydantic adapters of its parameters and response, for each application that includes the
route, on the first request that walks past it: ~100 ms for Atrium's 206 routes. The server
builds one application per process and pays it once; the test suite builds an application
per test (~3,500 of them) and paid it each time.

:func:`install` keeps what FastAPI builds for a route under everything it is built from,
except the application it came from (``dependency_overrides_provider``, which only serves
``app.dependency_overrides``: Atrium and its tests never set them, and
:func:`install` refuses to run if the key it needs has changed shape). Each cached
entry keeps the objects of its key alive, so their ``id`` is never reused by another one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import routing

_cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _key(route: Any, context: Any) -> tuple[Any, ...]:
    parts: list[Any] = [id(route)]
    for f in dataclasses.fields(context):
        if f.name == "dependency_overrides_provider":
            continue
        parts.append((f.name, repr(getattr(context, f.name))))
    return tuple(parts)


def install() -> None:
    """Cache ``_EffectiveRouteContext.from_api_route`` for this process.

    Raises:
        RuntimeError: FastAPI's internals are not those this cache was written for.
    """
    effective = getattr(routing, "_EffectiveRouteContext", None)
    include = getattr(routing, "_RouterIncludeContext", None)
    if effective is None or include is None or not hasattr(effective, "from_api_route"):
        raise RuntimeError("tests/route_cache.py: FastAPI's route internals changed")
    names = {f.name for f in dataclasses.fields(include)}
    if "dependency_overrides_provider" not in names:
        raise RuntimeError("tests/route_cache.py: FastAPI's include context changed")
    build = effective.from_api_route.__func__

    def from_api_route(cls: Any, *, original_route: Any, include_context: Any) -> Any:
        key = _key(original_route, include_context)
        hit = _cache.get(key)
        if hit is None:
            built = build(cls, original_route=original_route, include_context=include_context)
            hit = _cache[key] = ((original_route, include_context), built)
        return hit[1]

    effective.from_api_route = classmethod(from_api_route)


def size() -> int:
    """How many route builds are kept."""
    return len(_cache)
