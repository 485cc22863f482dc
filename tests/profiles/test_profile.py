"""GET/PATCH /api/v1/users/me/profile: every validation rule, usernames, audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from tests.factories import signed_in

PROFILE = "/api/v1/users/me/profile"


async def patch(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(PROFILE, json=body, headers=auth)


async def test_new_account_has_an_empty_public_profile(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    body = (await client.get(PROFILE, headers=auth)).json()

    assert body["username"] is None
    assert body["display_name"] is None
    assert body["visibility"] == "public"
    assert body["avatar"] is None
    assert body["verified"] is False
    assert "email" not in body


async def test_profile_requires_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get(PROFILE)).status_code == 401


async def test_patch_sets_every_field(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    body = {
        "username": "Ada.Lovelace",
        "display_name": "  Ada Lovelace ",
        "bio": "Analyst.\nPoet of science.",
        "location": "London",
        "website": "https://ada.example.org/notes?x=1",
        "pronouns": "she/her",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "visibility": "members",
        "location_visibility": "private",
        "website_visibility": "members",
        "pronouns_visibility": "public",
    }

    response = await patch(client, auth, body)

    assert response.status_code == 200, response.text
    got = response.json()
    assert got["username"] == "ada.lovelace"  # stored lower-cased
    assert got["display_name"] == "Ada Lovelace"
    assert got["bio"] == "Analyst.\nPoet of science."
    assert got["website"] == "https://ada.example.org/notes?x=1"
    assert got["locale"] == "en-GB"
    assert got["timezone"] == "Europe/London"
    assert got["location_visibility"] == "private"
    assert (await client.get(PROFILE, headers=auth)).json() == got


async def test_absent_fields_are_unchanged_and_null_clears(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    await patch(client, auth, {"bio": "hello", "location": "Paris"})

    got = (await patch(client, auth, {"location": None})).json()

    assert got["bio"] == "hello"
    assert got["location"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),  # too short
        ("username", "a" * 31),  # too long
        ("username", "has space"),
        ("username", "dash-ed"),
        ("username", "émile"),
        ("username", "admin"),  # reserved
        ("username", "Root"),  # reserved, case-insensitive
        ("username", "ad.min"),  # reserved once separators are ignored
        ("username", "support"),
        ("username", "me_"),
        ("bio", "x" * 501),
        ("display_name", "x" * 101),
        # NUL in any field is refused at the edge before parsing (tests/test_hostile_input.py).
        ("location", "x" * 101),
        ("pronouns", "x" * 41),
        ("website", "javascript:alert(1)"),
        ("website", "ftp://example.org/"),
        ("website", "data:text/html,hi"),
        ("website", "https://"),
        ("website", "https://user:pw@example.org/"),
        ("website", "https://exa mple.org/"),
        ("website", "example.org"),
        ("locale", "not a locale"),
        ("locale", "xx-YY"),
        ("locale", "en_GB"),
        ("timezone", "Mars/Olympus"),
        ("timezone", "../../etc/passwd"),
        ("timezone", "utc+2"),
        ("visibility", "friends"),
        ("location_visibility", "everyone"),
        ("unknown_field", "x"),
    ],
)
async def test_invalid_field_is_422_naming_the_field(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    auth = await signed_in(client)

    response = await patch(client, auth, {field: value})

    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "validation_error"
    assert [e["loc"] for e in problem["errors"]] == [["body", field]]
    # The message says what is wrong, without pydantic's "Value error, " prefix.
    assert not problem["errors"][0]["msg"].startswith("Value error")
    assert problem["errors"][0]["msg"]


async def test_every_bad_field_is_reported_at_once(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await patch(client, auth, {"username": "x", "bio": "y" * 600, "timezone": "Nope"})

    assert response.status_code == 422
    assert {e["loc"][1] for e in response.json()["errors"]} == {"username", "bio", "timezone"}


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("username", "a_b.c", "a_b.c"),
        ("username", "abc", "abc"),
        ("username", "a" * 30, "a" * 30),
        ("bio", "x" * 500, "x" * 500),
        ("website", "http://example.org", "http://example.org"),
        ("locale", "pt-br", "pt-BR"),
        ("locale", "zh-Hant-TW", "zh-Hant-TW"),
        ("locale", "fr", "fr"),
        ("timezone", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("timezone", "UTC", "UTC"),
        ("display_name", "   ", None),
    ],
)
async def test_valid_values_are_accepted(
    client: httpx.AsyncClient, field: str, value: str, stored: str | None
) -> None:
    auth = await signed_in(client)

    response = await patch(client, auth, {field: value})

    assert response.status_code == 200, response.text
    assert response.json()[field] == stored


async def test_username_is_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    first = await signed_in(client, "first@example.com")
    second = await signed_in(client, "second@example.com")
    assert (await patch(client, first, {"username": "grace"})).status_code == 200

    response = await patch(client, second, {"username": "GRACE"})

    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"
    assert (await client.get(PROFILE, headers=second)).json()["username"] is None


async def test_owner_may_keep_or_change_their_username(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    await patch(client, auth, {"username": "grace"})

    assert (await patch(client, auth, {"username": "grace"})).status_code == 200
    assert (await patch(client, auth, {"username": "hopper"})).json()["username"] == "hopper"
    assert (await client.get("/api/v1/profiles/grace")).status_code == 404
    assert (await client.get("/api/v1/profiles/hopper")).status_code == 200


async def test_profile_change_is_audited(client: httpx.AsyncClient, ctx: AppContext) -> None:
    from sqlalchemy import select

    from atrium.models import AuditEvent

    auth = await signed_in(client)
    await patch(client, auth, {"username": "grace", "bio": "hi"})

    async with ctx.sessionmaker() as db:
        events = (
            (await db.execute(select(AuditEvent).where(AuditEvent.action == "profile.updated")))
            .scalars()
            .all()
        )
    assert len(events) == 1
    assert events[0].changes == {
        "before": {"username": None, "bio": None},
        "after": {"username": "grace", "bio": "hi"},
    }
