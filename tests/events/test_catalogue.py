"""The catalogue: one JSON Schema per type, no secrets, the same list as docs/events.md."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from atrium.events.catalogue import CATALOGUE, EventType, register_event_types
from atrium.events.service import new_event

DOC = Path(__file__).parents[2] / "docs" / "events.md"
SECRET_NAME = re.compile(r"pass|hash|token|secret|key$|otp|credential|cookie|code", re.I)

REQUIRED_TYPES = {
    "user.created",
    "user.updated",
    "user.email_verified",
    "user.email_changed",
    "user.suspended",
    "user.reactivated",
    "user.deleted",
    "user.restored",
    "session.created",
    "session.revoked",
    "password.changed",
    "password.reset",
    "mfa.factor_added",
    "mfa.factor_removed",
    "role.granted",
    "role.revoked",
    "role.updated",
    "api_key.created",
    "api_key.revoked",
    "file.uploaded",
    "file.deleted",
}


def _names(schema: Any) -> list[str]:
    """Every property name anywhere in ``schema``."""
    found: list[str] = []
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            found.append(name)
            found += _names(sub)
        for key in ("items", "additionalProperties"):
            found += _names(schema.get(key))
    return found


def example(entry: EventType) -> dict[str, Any]:
    """A valid ``data`` for ``entry``, built from its schema."""
    values: dict[str, Any] = {}
    for name, prop in entry.properties.items():
        if prop.get("format") == "uuid":
            values[name] = str(uuid.uuid4())
        elif prop.get("format") == "email":
            values[name] = "ada@example.com"
        elif "enum" in prop:
            values[name] = prop["enum"][0]
        elif prop.get("type") == "boolean":
            values[name] = True
        elif prop.get("type") == "integer":
            values[name] = 1
        elif prop.get("type") == "array":
            values[name] = ["full_name"]
        else:
            values[name] = "x"
    return values


def test_the_catalogue_has_every_type_of_the_issue() -> None:
    assert set(CATALOGUE) >= REQUIRED_TYPES


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_type_has_a_valid_closed_json_schema(name: str) -> None:
    schema = CATALOGUE[name].schema
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema["title"] == name
    assert CATALOGUE[name].version >= 1


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_no_type_declares_a_secret_hash_or_token(name: str) -> None:
    names = _names(CATALOGUE[name].schema)
    assert [n for n in names if SECRET_NAME.search(n)] == []


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_an_example_of_every_type_validates_and_an_extra_field_is_refused(name: str) -> None:
    entry = CATALOGUE[name]
    data = example(entry)
    event = new_event(name, subject=uuid.uuid4(), data=data)
    assert event.subject_type == entry.subject
    entry.validator.validate(event.data)
    with pytest.raises(ValueError, match=re.escape(name)):
        new_event(name, subject=uuid.uuid4(), data={**data, "password_hash": "$argon2id$"})


def test_missing_required_field_is_refused() -> None:
    with pytest.raises(ValueError, match=r"role\.granted"):
        new_event("role.granted", subject=uuid.uuid4(), data={})


def test_unknown_type_is_refused() -> None:
    with pytest.raises(KeyError):
        new_event("user.teleported", subject=uuid.uuid4())


def test_docs_give_exactly_the_catalogue_and_its_schemas() -> None:
    sections = re.findall(
        r"^### `([a-z_]+\.[a-z_]+)`\n.*?```json\n(.*?)\n```", DOC.read_text(), re.M | re.S
    )
    documented = {name: json.loads(schema) for name, schema in sections}
    assert documented == {name: entry.schema for name, entry in CATALOGUE.items()}


def test_registering_a_different_definition_under_a_known_name_is_refused() -> None:
    clash = EventType("user.created", "user", "something else", {})
    with pytest.raises(ValueError, match="already registered"):
        register_event_types([clash])
    register_event_types([CATALOGUE["user.created"]])  # the same entry: idempotent
