"""Languages of the pages: Babel catalogs under ``ui/locale`` (English source, Spanish),
compiled in memory on first use like the email catalogs.

The language is the account's preference (``preferences.language``), then its
``locale``, then the best match of ``Accept-Language`` (RFC 9110 §12.5.4), then English.
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from importlib import resources
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

SOURCE_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}


def _(message: str) -> str:
    """Mark a string for extraction; translated when rendered."""
    return message


# Catalog directories of the running applications (``AtriumApp.locale``).
_APP_LOCALES: list[Path] = []


def register_catalogs(directory: Path) -> None:
    """Merge ``directory``'s catalogs (``<lang>/LC_MESSAGES/messages.po``) into the pages'
    (idempotent); the platform's messages win where both translate a message."""
    if directory not in _APP_LOCALES:
        _APP_LOCALES.append(directory)
        catalog.cache_clear()


def _compiled(po: Path | resources.abc.Traversable, language: str) -> Translations:
    with po.open("rb") as fh:
        parsed = read_po(fh, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, parsed)
    buffer.seek(0)
    return Translations(buffer)


@lru_cache(maxsize=8)
def catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (a NullTranslations for English), with the
    applications' messages."""
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = resources.files("atrium.ui").joinpath(f"locale/{language}/LC_MESSAGES/messages.po")
    if not path.is_file():
        return gettext.NullTranslations()
    parts = [
        _compiled(po, language)
        for po in (d / language / "LC_MESSAGES" / "messages.po" for d in _APP_LOCALES)
        if po.is_file()
    ]
    parts.append(_compiled(path, language))  # last: the platform's messages win
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    return merged


def _language_of(tag: str | None) -> str | None:
    if not tag:
        return None
    try:
        language = Locale.parse(tag.replace("-", "_")).language
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return language if language in LANGUAGES else None


def parse_accept_language(header: str) -> list[str]:
    """Language ranges of an ``Accept-Language`` header, best first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.strip()))
    return [tag for _q, _i, tag in sorted(ranked)]


def choose_language(
    preference: str | None, account_locale: str | None, accept_language: str | None
) -> str:
    """The page language: a language of :data:`LANGUAGES`."""
    for candidate in (preference, account_locale):
        language = _language_of(candidate)
        if language:
            return language
    for tag in parse_accept_language(accept_language or ""):
        language = _language_of(tag)
        if language:
            return language
    return SOURCE_LANGUAGE
