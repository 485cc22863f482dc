"""The admin user list (search, filters, sorts, keyset pagination, query counts) and
single-account administration (view, change, suspend, sessions, soft delete, restore)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.conftest import QueryCounter
from tests.factories import PASSWORD, grant_role, insert_user, login, register, signed_in_as
from tests.mailbox import queued_token

USERS = "/api/v1/admin/users"
T0 = datetime(2020, 1, 1, tzinfo=UTC)  # well before the test clock's "now"


@pytest.fixture
async def admin(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _, headers = await signed_in_as(client, ctx, "admin@example.net", "admin")
    return headers


async def _ids(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = await client.get(USERS, headers=headers, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [u["id"] for u in response.json()["items"]]


async def _all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = (await client.get(USERS, headers=headers, params=query)).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


# --- search and filters --------------------------------------------------------------------


async def test_q_matches_a_substring_of_email_username_or_name(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    by_email = await insert_user(ctx, email="grace.hopper@navy.example")
    by_username = await insert_user(ctx, username="cobol_grace")
    by_name = await insert_user(ctx, full_name="Ada GRACEful")
    await insert_user(ctx, email="other@example.com", full_name="Alan")

    found = await _ids(client, admin, q="grace")

    assert set(found) == {str(by_email), str(by_username), str(by_name)}


async def test_q_treats_like_wildcards_literally(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    pct = await insert_user(ctx, full_name="100% sure")
    await insert_user(ctx, full_name="1000 sure")
    assert await _ids(client, admin, q="0%") == [str(pct)]
    assert await _ids(client, admin, q="_") == []


async def test_status_filter_and_deleted_accounts_hidden_by_default(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    active = await insert_user(ctx, created_at=T0)
    suspended = await insert_user(ctx, status="suspended", created_at=T0)
    deleted = await insert_user(ctx, deleted_at=T0, created_at=T0)
    window = {"created_after": T0.isoformat(), "created_before": (T0 + timedelta(1)).isoformat()}

    assert set(await _ids(client, admin, **window)) == {str(active), str(suspended)}
    assert await _ids(client, admin, status="active", **window) == [str(active)]
    assert await _ids(client, admin, status="suspended", **window) == [str(suspended)]
    assert await _ids(client, admin, status="deleted", **window) == [str(deleted)]


async def test_role_filter(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    mod = await insert_user(ctx)
    await insert_user(ctx)
    await grant_role(ctx, mod, "moderator")

    assert await _ids(client, admin, role="moderator") == [str(mod)]
    assert await _ids(client, admin, role="no-such-role") == []


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "email", "-email", "last_login_at", "-last_login_at"]
)
async def test_role_filter_pages_in_order_with_every_sort(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], sort: str
) -> None:
    mods = []
    for i in range(7):
        uid = await insert_user(
            ctx,
            email=f"m{6 - i}@example.com",
            created_at=T0 + timedelta(hours=i % 3),
            # Three never logged in: pages cross from holders with a value to those without.
            last_login_at=T0 + timedelta(days=i) if i % 2 == 0 else None,
        )
        await grant_role(ctx, uid, "moderator")
        mods.append(uid)
    await insert_user(ctx, created_at=T0)  # not a moderator

    items = await _all_pages(client, admin, role="moderator", sort=sort, limit=2)

    got = [i["id"] for i in items]
    assert sorted(got) == sorted(str(m) for m in mods)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    with_value = [(i[key], i["id"]) for i in items if i[key] is not None]
    without = [i["id"] for i in items if i[key] is None]
    assert with_value == sorted(with_value, reverse=descending)
    assert without == sorted(without, reverse=descending)
    # Accounts without a value come last in both directions.
    assert got == [i for _, i in with_value] + without


async def test_role_filter_order_follows_logins_and_email_changes(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], clock: FrozenClock
) -> None:
    """The role-filtered list sorts by copies of the account's sort keys kept in
    user_role; a login and a confirmed email change move the account at once."""
    ada = (await register(client, "ada@example.com"))["id"]
    bob = (await register(client, "bob@example.com"))["id"]
    for uid in (ada, bob):
        await grant_role(ctx, uid, "moderator")
    await login(client, "bob@example.com")
    clock.advance(minutes=1)
    await login(client, "ada@example.com")

    assert await _ids(client, admin, role="moderator", sort="-last_login_at") == [ada, bob]
    assert await _ids(client, admin, role="moderator", sort="email") == [ada, bob]

    clock.advance(minutes=1)
    auth = {"Authorization": f"Bearer {(await login(client, 'bob@example.com'))['access_token']}"}
    changed = await client.post(
        "/api/v1/users/me/email",
        json={"new_email": "aaron@example.com", "password": PASSWORD},
        headers=auth,
    )
    assert changed.status_code == 202
    token = await queued_token(ctx, "confirm_email_change", "aaron@example.com")
    confirmed = await client.post("/api/v1/auth/email-change/confirm", json={"token": token})
    assert confirmed.status_code == 204

    assert await _ids(client, admin, role="moderator", sort="-last_login_at") == [bob, ada]
    assert await _ids(client, admin, role="moderator", sort="email") == [bob, ada]
    assert await _ids(client, admin, role="moderator", sort="email", q="aaron") == [bob]


async def test_email_verified_filter(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    verified = await insert_user(ctx, email_verified_at=T0)
    unverified = await insert_user(ctx)

    yes = await _ids(client, admin, email_verified="true")
    no = await _ids(client, admin, email_verified="false")

    assert yes == [str(verified)]
    assert str(unverified) in no
    assert str(verified) not in no


async def test_created_between_filter_is_inclusive_then_exclusive(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    ids = [await insert_user(ctx, created_at=T0 + timedelta(days=d)) for d in range(5)]

    found = await _ids(
        client,
        admin,
        created_after=(T0 + timedelta(days=1)).isoformat(),
        created_before=(T0 + timedelta(days=3)).isoformat(),
        sort="created_at",
    )

    assert found == [str(ids[1]), str(ids[2])]


# --- sorts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "email", "-email", "last_login_at", "-last_login_at"]
)
async def test_every_sort_orders_all_pages(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], sort: str
) -> None:
    expected: list[tuple[Any, uuid.UUID]] = []
    for i in range(9):
        created = T0 + timedelta(hours=(i * 7) % 9)
        last_login = None if i % 3 == 0 else T0 + timedelta(days=(i * 5) % 7)
        email = f"{'zyxwvutsr'[i]}{i}@example.com"
        uid = await insert_user(ctx, email=email, created_at=created, last_login_at=last_login)
        expected.append(({"created_at": created, "email": email, "last_login_at": last_login}, uid))
    key = sort.lstrip("-")
    desc = sort.startswith("-")
    with_value = [(v[key], uid) for v, uid in expected if v[key] is not None]
    without = [uid for v, uid in expected if v[key] is None]
    ordered = [uid for _, uid in sorted(with_value, key=lambda t: (t[0], str(t[1])), reverse=desc)]
    ordered += sorted(without, key=str, reverse=desc)  # never-logged-in last, both ways

    items = await _all_pages(
        client, admin, sort=sort, limit=2, created_before=(T0 + timedelta(days=30)).isoformat()
    )

    assert [i["id"] for i in items] == [str(u) for u in ordered]


async def test_limit_is_capped_at_100(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(USERS, headers=admin, params={"limit": 101})
    assert response.status_code == 422


async def test_a_bad_cursor_or_one_for_another_sort_is_400(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    for _ in range(3):
        await insert_user(ctx)
    cursor = (await client.get(USERS, headers=admin, params={"limit": 1})).json()["next_cursor"]

    other_sort = await client.get(USERS, headers=admin, params={"cursor": cursor, "sort": "email"})
    garbage = await client.get(USERS, headers=admin, params={"cursor": "!!not-base64"})

    assert other_sort.status_code == 400
    assert other_sort.json()["code"] == "invalid_cursor"
    assert garbage.status_code == 400
    assert garbage.json()["code"] == "invalid_cursor"


# --- pagination under inserts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "role"),
    [
        ("created_at", None),
        ("-created_at", None),
        ("email", None),
        ("-last_login_at", None),
        # With a role, every order comes from one of user_role's sort-key indexes.
        ("created_at", "user"),
        ("-created_at", "user"),
        ("email", "user"),
        ("-email", "user"),
        ("last_login_at", "user"),
        ("-last_login_at", "user"),
    ],
)
async def test_cursor_pagination_neither_repeats_nor_skips_while_rows_are_inserted(
    client: httpx.AsyncClient,
    ctx: AppContext,
    admin: dict[str, str],
    sort: str,
    role: str | None,
) -> None:
    clock = ctx.clock
    assert isinstance(clock, FrozenClock)
    original: set[str] = set()
    for i in range(12):
        # Equal sort values on purpose: the id must break ties.
        created = T0 + timedelta(minutes=i // 3)
        login_at = None if i % 4 == 0 else T0 + timedelta(minutes=i // 2)
        uid = await insert_user(ctx, created_at=created, last_login_at=login_at)
        original.add(str(uid))

    seen: list[str] = []
    cursor = None
    inserted = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "limit": 3, "created_after": T0.isoformat()}
        if role:
            params["role"] = role
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(USERS, headers=admin, params=params)).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # New accounts at both ends and in the middle of the order, between pages.
        for created in (T0, T0 + timedelta(minutes=2), T0 + timedelta(days=9)):
            await insert_user(
                ctx, email=f"new{inserted}@example.com", created_at=created, last_login_at=created
            )
            inserted += 1

    assert len(seen) == len(set(seen)), "a row was repeated"
    assert original <= set(seen), "a row was skipped"


# --- query counts --------------------------------------------------------------------------


async def _count_list_queries(
    client: httpx.AsyncClient, headers: dict[str, str], queries: QueryCounter, **params: Any
) -> int:
    await client.get(USERS, headers=headers, params=params)  # warm the caches
    before = queries.count
    response = await client.get(USERS, headers=headers, params=params)
    assert response.status_code == 200
    return queries.count - before


async def test_user_list_query_count_does_not_grow_with_the_page(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], queries: QueryCounter
) -> None:
    for _ in range(3):
        await insert_user(ctx)
    small = await _count_list_queries(client, admin, queries, limit=2)
    for _ in range(40):
        uid = await insert_user(ctx)
        await grant_role(ctx, uid, "moderator")
    large = await _count_list_queries(client, admin, queries, limit=40, q="example", role="user")

    # The page and the roles of its accounts; authorisation comes from the caches.
    assert small == 2
    assert large == 2


@pytest.mark.parametrize("sort", ["email", "-email", "-last_login_at"])
async def test_role_filtered_list_query_count_with_each_sort(
    client: httpx.AsyncClient,
    ctx: AppContext,
    admin: dict[str, str],
    queries: QueryCounter,
    sort: str,
) -> None:
    for i in range(30):
        uid = await insert_user(ctx, last_login_at=T0 + timedelta(hours=i))
        await grant_role(ctx, uid, "moderator")
    count = await _count_list_queries(client, admin, queries, role="moderator", sort=sort, limit=25)
    assert count == 2  # the page (one query on the role's sort-key index) and its roles


async def test_last_login_sort_query_count_when_crossing_to_never_logged_in(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str], queries: QueryCounter
) -> None:
    await insert_user(ctx, last_login_at=T0)
    await insert_user(ctx)
    count = await _count_list_queries(client, admin, queries, sort="last_login_at", limit=10)
    assert count == 3


async def test_audit_list_query_count(
    client: httpx.AsyncClient, ctx: AppContext, queries: QueryCounter
) -> None:
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    for i in range(5):
        await register(client, f"u{i}@example.com")
    url = "/api/v1/admin/audit-events"
    await client.get(url, headers=root)
    before = queries.count
    assert (await client.get(url, headers=root, params={"limit": 100})).status_code == 200
    assert queries.count - before == 1


# --- one account ---------------------------------------------------------------------------


async def test_get_and_patch_a_user(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    url = f"{USERS}/{target['id']}"

    patched = await client.patch(
        url,
        headers=admin,
        json={"email_verified": True, "profile_verified": True, "full_name": "Tee"},
    )
    fetched = await client.get(url, headers=admin)

    assert patched.status_code == 200, patched.text
    for body in (patched.json(), fetched.json()):
        assert body["email_verified"] is True
        assert body["profile_verified"] is True
        assert body["full_name"] == "Tee"
        assert body["roles"] == ["user"]
        assert body["status"] == "active"
        assert "password_hash" not in body


async def test_patch_refuses_unknown_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    response = await client.patch(
        f"{USERS}/{target['id']}", headers=admin, json={"password_hash": "x"}
    )
    assert response.status_code == 422


async def test_unknown_user_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(f"{USERS}/{uuid.uuid4()}", headers=admin)
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"


async def test_suspended_user_is_locked_out_at_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    tokens = await login(client, "t@example.com")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=bearer)).status_code == 200

    response = await client.patch(
        f"{USERS}/{target['id']}", headers=admin, json={"status": "suspended"}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    assert (await client.get("/api/v1/users/me", headers=bearer)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    relogin = await client.post(
        "/api/v1/auth/login", data={"username": "t@example.com", "password": PASSWORD}
    )
    # The right password of a suspended account is told so (as the audit trail records).
    assert relogin.status_code == 403
    assert relogin.json()["code"] == "account_suspended"


async def test_reactivated_user_can_log_in_again(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    url = f"{USERS}/{target['id']}"
    await client.patch(url, headers=admin, json={"status": "suspended"})
    await client.patch(url, headers=admin, json={"status": "active"})
    tokens = await login(client, "t@example.com")  # asserts the 200 itself

    assert tokens["access_token"]


async def test_admin_revokes_every_session_of_a_user(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    a = await login(client, "t@example.com")
    b = await login(client, "t@example.com")

    response = await client.post(f"{USERS}/{target['id']}/sessions/revoke", headers=admin)

    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    for tokens in (a, b):
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 401
    await login(client, "t@example.com")  # not suspended: a new login works


async def test_soft_deleted_user_is_locked_out_hidden_and_restorable(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    tokens = await login(client, "t@example.com")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    url = f"{USERS}/{target['id']}"

    assert (await client.delete(url, headers=admin)).status_code == 204

    assert (await client.get("/api/v1/users/me", headers=bearer)).status_code == 401
    relogin = await client.post(
        "/api/v1/auth/login", data={"username": "t@example.com", "password": PASSWORD}
    )
    assert relogin.status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert target["id"] not in await _ids(client, admin)
    assert (await client.get(url, headers=admin)).json()["status"] == "deleted"
    assert (await client.patch(url, headers=admin, json={"full_name": "x"})).status_code == 409

    restored = await client.post(f"{url}/restore", headers=admin)

    assert restored.status_code == 200
    assert restored.json()["status"] == "active"
    await login(client, "t@example.com")


async def test_restore_after_the_retention_window_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    url = f"{USERS}/{target['id']}"
    await client.delete(url, headers=admin)
    clock = ctx.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(days=ctx.settings.accounts.deleted_retention_days, seconds=1)
    fresh = await login(client, "admin@example.net")  # the old access token has expired

    response = await client.post(
        f"{url}/restore", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "retention_expired"


async def test_restore_of_an_account_not_deleted_is_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    target = await register(client, "t@example.com")
    response = await client.post(f"{USERS}/{target['id']}/restore", headers=admin)
    assert response.status_code == 409
    assert response.json()["code"] == "user_not_deleted"


async def test_purge_removes_only_expired_soft_deleted_accounts(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from atrium.admin.service import purge_expired
    from atrium.models import User

    now = ctx.clock.now()
    expired = await insert_user(ctx, deleted_at=now - timedelta(days=31))
    recent = await insert_user(ctx, deleted_at=now - timedelta(days=29))
    alive = await insert_user(ctx)

    async with ctx.sessionmaker() as db:
        purged = await purge_expired(db, now=now, retention_days=30, batch_size=1)
        await db.commit()
        remaining = {u.id for u in (await db.execute(User.__table__.select())).all()}

    assert purged == 1
    assert expired not in remaining
    assert {recent, alive} <= remaining
