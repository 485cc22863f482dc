"""GET/PUT/PATCH /api/v1/users/me/preferences: defaults, validation, unknown keys,
schema versions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from atrium.context import AppContext
from atrium.models import UserPreferences
from tests.factories import signed_in

PREFS = "/api/v1/users/me/preferences"

DEFAULTS = {
    "theme": "system",
    "language": None,
    "date_format": "locale",
    "time_format": "locale",
    "notifications": {
        "security": {"email": True, "in_app": True},
        "account": {"email": True, "in_app": True},
        "mentions": {"email": False, "in_app": True},
        "product_updates": {"email": False, "in_app": False},
    },
    "accessibility": {"reduced_motion": False, "high_contrast": False, "font_scale": 1.0},
    "privacy": {"activity_tracking": True},
    "schema_version": 2,
}


async def test_new_account_reads_the_defaults(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await client.get(PREFS, headers=auth)

    assert response.status_code == 200
    assert response.json() == DEFAULTS


async def test_patch_merges_nested_objects(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await client.patch(
        PREFS,
        json={"theme": "dark", "notifications": {"mentions": {"email": True}}},
        headers=auth,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["theme"] == "dark"
    assert body["notifications"]["mentions"] == {"email": True, "in_app": True}
    assert body["notifications"]["security"] == DEFAULTS["notifications"]["security"]  # type: ignore[index]
    assert (await client.get(PREFS, headers=auth)).json() == body


async def test_put_replaces_everything_and_resets_absent_keys(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    await client.patch(PREFS, json={"theme": "dark", "time_format": "24h"}, headers=auth)

    response = await client.put(
        PREFS, json={"accessibility": {"font_scale": 1.5, "reduced_motion": True}}, headers=auth
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["theme"] == "system"
    assert body["time_format"] == "locale"
    assert body["accessibility"] == {
        "reduced_motion": True,
        "high_contrast": False,
        "font_scale": 1.5,
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"colour": "red"}, ["body", "colour"]),
        ({"notifications": {"sms": {"email": True}}}, ["body", "notifications", "sms"]),
        (
            {"notifications": {"security": {"pigeon": True}}},
            ["body", "notifications", "security", "pigeon"],
        ),
        ({"accessibility": {"zoom": 2}}, ["body", "accessibility", "zoom"]),
        ({"theme": "neon"}, ["body", "theme"]),
        ({"date_format": "YY"}, ["body", "date_format"]),
        ({"time_format": "25h"}, ["body", "time_format"]),
        ({"language": "klingon!"}, ["body", "language"]),
        ({"accessibility": {"font_scale": 10}}, ["body", "accessibility", "font_scale"]),
        ({"accessibility": {"font_scale": 0.1}}, ["body", "accessibility", "font_scale"]),
        ({"accessibility": {"high_contrast": "very"}}, ["body", "accessibility", "high_contrast"]),
    ],
)
async def test_invalid_or_unknown_preference_is_422(
    client: httpx.AsyncClient, method: str, body: dict[str, object], loc: list[str]
) -> None:
    auth = await signed_in(client)

    response = await client.request(method, PREFS, json=body, headers=auth)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert loc in [e["loc"] for e in response.json()["errors"]]
    assert (await client.get(PREFS, headers=auth)).json() == DEFAULTS


async def test_patch_body_must_be_an_object(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await client.patch(PREFS, json=["theme"], headers=auth)

    assert response.status_code == 422


async def test_language_is_a_bcp47_tag(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await client.patch(PREFS, json={"language": "es-mx"}, headers=auth)

    assert response.json()["language"] == "es-MX"


async def test_an_old_row_reads_with_defaults_for_keys_added_since(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """A row written by an older schema (fewer keys, and one key since removed) needs no
    data migration: missing keys read as their defaults, removed keys are ignored."""
    auth = await signed_in(client)
    me = (await client.get("/api/v1/users/me", headers=auth)).json()
    async with ctx.sessionmaker() as db:
        db.add(
            UserPreferences(
                user_id=uuid.UUID(me["id"]),
                schema_version=0,
                data={
                    "theme": "dark",
                    "legacy_flag": True,
                    "notifications": {"security": {"email": False}},
                },
                updated_at=datetime.now(UTC),
            )
        )
        await db.commit()

    body = (await client.get(PREFS, headers=auth)).json()

    assert body["theme"] == "dark"
    assert body["notifications"]["security"] == {"email": False, "in_app": True}
    assert body["accessibility"] == DEFAULTS["accessibility"]
    assert "legacy_flag" not in body
    # The next write stores the current version.
    assert (await client.patch(PREFS, json={}, headers=auth)).json()["schema_version"] == 2
