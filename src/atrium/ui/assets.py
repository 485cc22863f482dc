"""Static files of the pages under content-hashed names.

``asset_url("vendor/htmx.min.js")`` is ``/ui/static/vendor/htmx.min.<sha256[:12]>.js``;
a hashed name never changes meaning, so it is served with a one-year ``immutable``
cache lifetime (RFC 8246) and a new release gets new names.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/ui/static/"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    path: Path
    media_type: str


@dataclass(frozen=True)
class AssetIndex:
    urls: dict[str, str]  # logical name -> hashed URL
    files: dict[str, Asset]  # hashed relative name -> file


def _hashed_name(relative: str, digest: str) -> str:
    stem, dot, suffix = relative.rpartition(".")
    if not dot:
        return f"{relative}.{digest}"
    return f"{stem}.{digest}.{suffix}"


@lru_cache(maxsize=1)
def asset_index() -> AssetIndex:
    """Every file under ``static/`` (licence texts included), hashed once per process."""
    urls: dict[str, str] = {}
    files: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(STATIC_DIR).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        hashed = _hashed_name(relative, digest)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type.endswith("javascript"):
            media_type += "; charset=utf-8"
        urls[relative] = STATIC_PREFIX + hashed
        files[hashed] = Asset(path=path, media_type=media_type)
    return AssetIndex(urls=urls, files=files)


def asset_url(name: str) -> str:
    """The hashed URL of static file ``name`` (relative to ``static/``).

    Raises:
        KeyError: no such file (a template naming a missing asset fails loudly).
    """
    return asset_index().urls[name]
