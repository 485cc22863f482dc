"""Shared schema types of the mail domain."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from atrium.mail.render import document_locale_tags, normalize_locale


def _locale(value: str | None) -> str | None:
    return normalize_locale(value) if value is not None else None


# A CLDR locale identifier ("es", "es-MX"), normalised ("es_MX"); the language of the
# account's emails, falling back to English when there is no catalog for it.
LocaleField = Annotated[
    str | None,
    Field(default=None, max_length=16, examples=["es"], json_schema_extra=document_locale_tags),
    AfterValidator(_locale),
]
