"""The one cursor codec: what it accepts, and that every cursor-paginated route answers a
forged cursor with 400 ``invalid_cursor`` problem details, never a 500."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.db import unit_of_work
from atrium.core.pagination import CursorCodec, CursorField, InvalidCursor
from atrium.notifications.service import add_notification
from tests.factories import signed_in_as

CODEC = CursorCodec("things:newest", at=CursorField.DATETIME, id=CursorField.UUID)
WHEN = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
ID = uuid.UUID("6f1b3f9e-8c1d-4f4e-9a51-2f2f0c7d1a11")


def forge(body: Any) -> str:
    raw = json.dumps(body).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_cursor_round_trips_with_its_types() -> None:
    decoded = CODEC.decode(CODEC.encode({"at": WHEN, "id": ID}))

    assert decoded == {"at": WHEN, "id": ID}


def test_a_datetime_in_another_offset_is_read_in_utc() -> None:
    decoded = CODEC.decode(
        forge({"k": "things:newest", "at": "2026-05-01T14:30:00+02:00", "id": str(ID)})
    )

    assert decoded["at"] == WHEN
    assert decoded["at"].tzinfo is UTC


def test_nullable_and_integer_fields() -> None:
    codec = CursorCodec("n", v=CursorField.DATETIME_OR_NULL, n=CursorField.INT)

    assert codec.decode(codec.encode({"v": None, "n": 7})) == {"v": None, "n": 7}
    with pytest.raises(InvalidCursor):
        codec.decode(forge({"k": "n", "v": None, "n": True}))
    with pytest.raises(InvalidCursor):
        codec.decode(forge({"k": "n", "v": None, "n": 2**63}))
    with pytest.raises(InvalidCursor):
        codec.decode(forge({"k": "n", "v": None, "n": "7"}))


BAD_POSITIONS = [
    {"at": WHEN.isoformat(), "id": 12345},  # an integer id
    {"at": WHEN.isoformat(), "id": "not-a-uuid"},
    {"at": WHEN.isoformat(), "id": None},
    {"at": "9999-12-31T23:59:59-14:00", "id": str(ID)},  # past the end once in UTC
    {"at": "0001-01-01T00:00:00+14:00", "id": str(ID)},  # before the start once in UTC
    {"at": "2026-01-01T00:00:00", "id": str(ID)},  # naive
    {"at": "yesterday", "id": str(ID)},
    {"at": 1767225600, "id": str(ID)},
    {"at": ["2026-01-01T00:00:00+00:00"], "id": str(ID)},
    {"at": WHEN.isoformat()},  # a field missing
    {"at": WHEN.isoformat(), "id": str(ID), "extra": 1},  # a field too many
]


@pytest.mark.parametrize("position", BAD_POSITIONS)
def test_a_forged_position_is_refused(position: dict[str, Any]) -> None:
    with pytest.raises(InvalidCursor) as caught:
        CODEC.decode(forge({"k": "things:newest", **position}))

    assert caught.value.status == 400
    assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        "!!not-base64",
        base64.urlsafe_b64encode(b"not json").decode(),
        forge([1, 2]),
        forge("a string"),
        forge({"k": "other:list", "at": WHEN.isoformat(), "id": str(ID)}),
        forge({"at": WHEN.isoformat(), "id": str(ID)}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forge({"k": "things:newest", "at": "x" * 2000, "id": str(ID)}),
        "",
    ],
)
def test_a_cursor_that_is_not_one_of_this_list_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        CODEC.decode(cursor)


# --- every cursor-paginated route ---------------------------------------------------------

# Each cursor-paginated GET route, with the query variants that make different cursors.
PAGINATED: dict[str, list[dict[str, str]]] = {
    "/api/v1/admin/users": [
        {"sort": s}
        for s in ("created_at", "-created_at", "email", "-email", "last_login_at", "-last_login_at")
    ],
    "/api/v1/admin/audit-events": [{}],
    "/api/v1/users/me/security-events": [{}],
    "/api/v1/files": [{}],
    "/api/v1/users/me/notifications": [{}, {"unread": "true"}],
}


def _cursor_routes(app: Any) -> set[str]:
    """Every GET operation of the OpenAPI document that takes a ``cursor`` parameter."""
    return {
        path
        for path, operations in app.openapi()["paths"].items()
        if any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))
    }


def _is_datetime(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _forgeries(real: str) -> list[str]:
    """Cursors made from a real one by changing one thing, and plain garbage. A string
    position (the email sort) accepts any bounded string: only non-strings, NUL and an
    overlong value are forged there."""
    padded = real + "=" * (-len(real) % 4)
    body: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    out = ["!!not-base64", forge([1]), forge({"k": body["k"]}), forge({**body, "k": "other"})]
    for name, value in body.items():
        if name == "k":
            continue
        forged: list[Any] = [12345, -1, 10**30, {"nested": True}, [], True]
        if name == "id":
            forged += [None, "not-a-uuid"]
        if name == "id" or _is_datetime(value):
            forged += [
                "9999-12-31T23:59:59-14:00",
                "0001-01-01T00:00:00+14:00",
                "2026-01-01T00:00:00",
            ]
        else:
            forged += ["a\u0000b", "x" * 600]
        out.extend(forge({**body, name: v}) for v in forged)
    out.append(forge({**body, "extra": 1}))
    return out


async def test_every_cursor_route_is_covered(app: Any) -> None:
    assert _cursor_routes(app) == set(PAGINATED)


async def test_a_forged_cursor_is_400_invalid_cursor_on_every_paginated_route(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root_id, auth = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    await signed_in_as(client, ctx, "second@example.com")
    async with unit_of_work(ctx.sessionmaker) as db:
        for title in ("one", "two"):
            await add_notification(
                db,
                user_id=uuid.UUID(root_id),
                category="account",
                title=title,
                body=title,
                link=None,
                source_id=None,
                now=ctx.clock.now(),
            )
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    for name in ("a.pdf", "b.pdf"):
        uploaded = await client.post(
            "/api/v1/files", files={"file": (name, pdf, "application/pdf")}, headers=auth
        )
        assert uploaded.status_code == 201, uploaded.text

    for path, variants in PAGINATED.items():
        for params in variants:
            first = await client.get(path, headers=auth, params={**params, "limit": 1})
            real = first.json()["next_cursor"]
            assert real, (path, params)
            assert (
                await client.get(path, headers=auth, params={**params, "cursor": real})
            ).status_code == 200
            for cursor in _forgeries(real):
                response = await client.get(path, headers=auth, params={**params, "cursor": cursor})
                assert response.status_code == 400, (path, params, cursor, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["code"] == "invalid_cursor"
