"""Autogenerate options shared by ``env.py`` and the migration tests."""

from __future__ import annotations

from atrium.models.user import TRIGRAM_INDEXES


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave out of autogenerate the PostgreSQL-only indexes that the models cannot
    describe portably (pg_trgm GIN indexes, see models/user.py)."""
    return not (type_ == "index" and reflected and name in TRIGRAM_INDEXES)
