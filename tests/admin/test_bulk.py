"""Bulk actions: one transaction, all or nothing, with a per-id result."""

from __future__ import annotations

import uuid

import httpx
import pytest

from atrium.context import AppContext
from tests.factories import insert_user, login, register, signed_in_as

BULK = "/api/v1/admin/users/bulk"
USERS = "/api/v1/admin/users"


@pytest.fixture
async def admin(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _, headers = await signed_in_as(client, ctx, "admin@example.net", "admin")
    return headers


async def _status(client: httpx.AsyncClient, admin: dict[str, str], uid: object) -> str:
    body = (await client.get(f"{USERS}/{uid}", headers=admin)).json()
    return str(body["status"])


async def test_bulk_suspend_applies_to_every_id_with_a_result_each(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    a = await register(client, "a@example.com")
    tokens = await login(client, "a@example.com")
    b = await insert_user(ctx)
    already = await insert_user(ctx, status="suspended")

    response = await client.post(
        BULK, headers=admin, json={"ids": [a["id"], str(b), str(already)], "action": "suspend"}
    )

    assert response.status_code == 200, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    assert all(r["ok"] for r in results.values())
    assert results[a["id"]]["changed"] is True
    assert results[str(already)]["changed"] is False
    for uid in (a["id"], b, already):
        assert await _status(client, admin, uid) == "suspended"
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 401  # sessions revoked at once


async def test_bulk_is_all_or_nothing_when_one_id_fails(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    good = [await insert_user(ctx) for _ in range(3)]
    missing = uuid.uuid4()

    response = await client.post(
        BULK,
        headers=admin,
        json={"ids": [*map(str, good), str(missing)], "action": "delete"},
    )

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "bulk_action_failed"
    results = {r["id"]: r for r in body["errors"]}
    assert results[str(missing)] == {
        "id": str(missing),
        "ok": False,
        "changed": False,
        "code": "user_not_found",
        "detail": "No such user.",
    }
    assert all(results[str(g)]["ok"] for g in good)
    for uid in good:  # nothing was changed
        assert await _status(client, admin, uid) == "active"


async def test_bulk_refuses_accounts_more_privileged_than_the_caller(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    plain = await insert_user(ctx)
    root_id, _ = await signed_in_as(client, ctx, "root@example.com", "superadmin")

    response = await client.post(
        BULK, headers=admin, json={"ids": [str(plain), root_id], "action": "suspend"}
    )

    assert response.status_code == 409
    results = {r["id"]: r for r in response.json()["errors"]}
    assert results[root_id]["code"] == "escalation_refused"
    assert await _status(client, admin, plain) == "active"


async def test_bulk_add_and_remove_role(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    ids = [str(await insert_user(ctx)) for _ in range(3)]

    added = await client.post(
        BULK, headers=admin, json={"ids": ids, "action": "add_role", "role": "moderator"}
    )
    listed = await client.get(USERS, headers=admin, params={"role": "moderator"})
    removed = await client.post(
        BULK, headers=admin, json={"ids": ids[:1], "action": "remove_role", "role": "moderator"}
    )

    assert added.status_code == 200
    assert {i["id"] for i in listed.json()["items"]} == set(ids)
    assert removed.status_code == 200
    roles = (await client.get(f"{USERS}/{ids[0]}", headers=admin)).json()["roles"]
    assert roles == ["user"]


async def test_bulk_role_escalation_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    uid = str(await insert_user(ctx))
    response = await client.post(
        BULK, headers=admin, json={"ids": [uid], "action": "add_role", "role": "superadmin"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "escalation_refused"


async def test_bulk_cannot_remove_the_last_superadmin(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    root_id, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    other = str(await insert_user(ctx))

    response = await client.post(
        BULK, headers=root, json={"ids": [other, root_id], "action": "delete"}
    )

    assert response.status_code == 409
    assert {r["id"]: r for r in response.json()["errors"]}[root_id]["code"] == "last_superadmin"
    assert await _status(client, root, other) == "active"


async def test_bulk_needs_the_permission_of_its_action(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, mod = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    uid = str(await insert_user(ctx))
    response = await client.post(BULK, headers=mod, json={"ids": [uid], "action": "suspend"})
    assert response.status_code == 403
    assert response.json()["errors"] == [{"permission": "users:write"}]


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [], "action": "suspend"},
        {"ids": [str(uuid.uuid4()) for _ in range(1001)], "action": "suspend"},
        {"ids": [str(uuid.uuid4())], "action": "add_role"},
        {"ids": [str(uuid.uuid4())], "action": "suspend", "role": "admin"},
        {"ids": [str(uuid.uuid4())], "action": "explode"},
    ],
    ids=["empty", "over-1000", "role-missing", "role-unexpected", "unknown-action"],
)
async def test_bulk_request_validation(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, object]
) -> None:
    response = await client.post(BULK, headers=admin, json=body)
    assert response.status_code == 422


async def test_bulk_of_1000_ids_uses_a_bounded_number_of_queries(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], queries: object
) -> None:
    from tests.conftest import QueryCounter

    assert isinstance(queries, QueryCounter)
    ids = [str(await insert_user(ctx)) for _ in range(60)]
    before = queries.count
    response = await client.post(BULK, headers=admin, json={"ids": ids, "action": "suspend"})
    assert response.status_code == 200
    assert queries.count - before < 20


async def test_bulk_suspend_writes_the_cache_in_one_call_for_sessions_and_one_for_accounts(
    client: httpx.AsyncClient,
    ctx: AppContext,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pending markers (before the commit) and tombstones (after it) of every revoked
    session, and the dropped snapshots of every account, go to the cache in one call each,
    not one per session or account."""
    ids = []
    for i in range(5):
        user = await register(client, f"u{i}@example.com")
        await login(client, f"u{i}@example.com")
        await login(client, f"u{i}@example.com")
        ids.append(user["id"])
    calls: list[tuple[str, list[str]]] = []
    for name in ("set", "set_many", "delete"):
        original = getattr(ctx.cache, name)

        def spy(*args: object, _name: str = name, _original: object = original) -> object:
            if _name == "set_many":
                keys = list(args[0])  # type: ignore[call-overload]
            elif _name == "set":
                keys = [str(args[0])]
            else:
                keys = [str(k) for k in args]
            calls.append((_name, keys))
            return _original(*args)  # type: ignore[operator]

        monkeypatch.setattr(ctx.cache, name, spy)

    response = await client.post(BULK, headers=admin, json={"ids": ids, "action": "suspend"})

    assert response.status_code == 200, response.text
    tombstones = [(n, k) for n, k in calls if any(key.startswith("sess:") for key in k)]
    dropped = [(n, k) for n, k in calls if any(key.startswith("user:") for key in k)]
    # two sessions each: markers, then tombstones
    assert [(n, len(k)) for n, k in tombstones] == [("set_many", 10), ("set_many", 10)]
    assert [(n, len(k)) for n, k in dropped if n == "delete"] == [("delete", 5)]
