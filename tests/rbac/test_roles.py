"""Roles through the API: CRUD, inheritance, cycles, escalation, built-ins, the last
superadmin, and permission checks that follow role changes at once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from atrium.context import AppContext
from atrium.rbac.repository import RoleRepository
from tests.factories import PASSWORD, login, register, signed_in_as

ROLES = "/api/v1/admin/roles"
USERS = "/api/v1/admin/users"


@pytest.fixture
async def root(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _, headers = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    return headers


async def test_builtin_roles_exist_with_inheritance(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    response = await client.get(ROLES, headers=root)
    assert response.status_code == 200
    roles = {r["name"]: r for r in response.json()}
    assert set(roles) == {"user", "moderator", "admin", "superadmin"}
    assert all(r["is_builtin"] for r in roles.values())
    assert roles["admin"]["parents"] == ["moderator"]
    assert "profiles:read" in roles["admin"]["effective_permissions"]
    assert "roles:manage" in roles["superadmin"]["effective_permissions"]


async def test_registration_gives_the_user_role(client: httpx.AsyncClient) -> None:
    body = await register(client, "ada@example.com")
    assert body["roles"] == ["user"]
    assert body["is_superuser"] is False
    tokens = await login(client, "ada@example.com")
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["roles"] == ["user"]


async def test_permission_inherited_from_a_parent_role_is_granted(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    created = await client.post(
        ROLES,
        headers=root,
        json={"name": "support", "permissions": ["sessions:revoke"], "parents": ["moderator"]},
    )
    assert created.status_code == 201, created.text
    assert "users:read" in created.json()["effective_permissions"]
    _, headers = await signed_in_as(client, ctx, "sup@example.com", "support")
    target = await register(client, "t@example.com")

    assert (await client.get(USERS, headers=headers)).status_code == 200  # via moderator
    revoke = await client.post(f"{USERS}/{target['id']}/sessions/revoke", headers=headers)
    assert revoke.status_code == 200  # its own permission
    denied = await client.patch(f"{USERS}/{target['id']}", headers=headers, json={})
    assert denied.status_code == 403
    assert denied.json()["errors"] == [{"permission": "users:write"}]


async def test_missing_permission_is_403_naming_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, headers = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    target = await register(client, "t@example.com")

    response = await client.patch(f"{USERS}/{target['id']}", headers=headers, json={})

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "permission_denied"
    assert "users:write" in body["detail"]
    assert body["errors"] == [{"permission": "users:write"}]


async def test_no_token_is_401_not_403(client: httpx.AsyncClient) -> None:
    response = await client.get(USERS)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


async def test_role_inheritance_cycle_is_refused_with_422(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    assert (await client.post(ROLES, headers=root, json={"name": "a"})).status_code == 201
    assert (
        await client.post(ROLES, headers=root, json={"name": "b", "parents": ["a"]})
    ).status_code == 201
    assert (
        await client.post(ROLES, headers=root, json={"name": "c", "parents": ["b"]})
    ).status_code == 201

    cycle = await client.patch(f"{ROLES}/a", headers=root, json={"parents": ["c"]})
    self_loop = await client.patch(f"{ROLES}/a", headers=root, json={"parents": ["a"]})

    assert cycle.status_code == 422
    assert cycle.json()["code"] == "role_cycle"
    assert self_loop.status_code == 422
    assert (await client.get(f"{ROLES}/a", headers=root)).json()["parents"] == []


async def test_unknown_permission_and_parent_are_refused(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    bad_perm = await client.post(ROLES, headers=root, json={"name": "x", "permissions": ["a:b"]})
    bad_parent = await client.post(ROLES, headers=root, json={"name": "x", "parents": ["nope"]})
    assert bad_perm.status_code == 422
    assert bad_perm.json()["code"] == "unknown_permission"
    assert bad_parent.status_code == 404
    assert bad_parent.json()["code"] == "role_not_found"


async def test_duplicate_role_name_is_409(client: httpx.AsyncClient, root: dict[str, str]) -> None:
    assert (await client.post(ROLES, headers=root, json={"name": "x"})).status_code == 201
    again = await client.post(ROLES, headers=root, json={"name": "x"})
    assert again.status_code == 409
    assert again.json()["code"] == "role_exists"


@pytest.mark.parametrize("name", ["user", "moderator", "admin", "superadmin"])
async def test_builtin_roles_cannot_be_deleted(
    client: httpx.AsyncClient, root: dict[str, str], name: str
) -> None:
    response = await client.delete(f"{ROLES}/{name}", headers=root)
    assert response.status_code == 409
    assert response.json()["code"] == "builtin_role_protected"


async def test_superadmin_permissions_cannot_be_redefined(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    response = await client.patch(f"{ROLES}/superadmin", headers=root, json={"permissions": []})
    assert response.status_code == 409


async def test_custom_role_can_be_updated_and_deleted(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    await client.post(ROLES, headers=root, json={"name": "x", "permissions": ["users:read"]})
    updated = await client.patch(
        f"{ROLES}/x", headers=root, json={"description": "d", "permissions": ["audit:read"]}
    )
    assert updated.status_code == 200
    assert updated.json()["permissions"] == ["audit:read"]
    assert updated.json()["description"] == "d"
    assert (await client.delete(f"{ROLES}/x", headers=root)).status_code == 204
    assert (await client.get(f"{ROLES}/x", headers=root)).status_code == 404


# --- immediate effect ----------------------------------------------------------------------


async def test_revoked_role_stops_a_live_access_token_at_once(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    uid, headers = await signed_in_as(client, ctx, "adm@example.com", "admin")
    assert (await client.get(USERS, headers=headers)).status_code == 200

    revoked = await client.delete(f"{USERS}/{uid}/roles/admin", headers=root)

    assert revoked.status_code == 200
    assert revoked.json() == ["user"]
    after = await client.get(USERS, headers=headers)
    assert after.status_code == 403
    assert after.json()["code"] == "permission_denied"


async def test_permission_removed_from_a_role_stops_working_at_once_for_holders(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    await client.post(ROLES, headers=root, json={"name": "viewer", "permissions": ["users:read"]})
    _, headers = await signed_in_as(client, ctx, "v@example.com", "viewer")
    assert (await client.get(USERS, headers=headers)).status_code == 200

    await client.patch(f"{ROLES}/viewer", headers=root, json={"permissions": []})

    assert (await client.get(USERS, headers=headers)).status_code == 403


async def test_granted_role_works_at_once_on_a_live_token(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    uid, headers = await signed_in_as(client, ctx, "late@example.com")
    assert (await client.get(USERS, headers=headers)).status_code == 403

    granted = await client.put(f"{USERS}/{uid}/roles/moderator", headers=root)

    assert granted.status_code == 200
    assert granted.json() == ["moderator", "user"]
    assert (await client.get(USERS, headers=headers)).status_code == 200


async def test_a_role_change_on_one_app_instance_is_seen_by_another(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str], settings: object
) -> None:
    # Two nodes: only with a shared cache (Redis) does the second see the change at once.
    from atrium.config import Settings
    from atrium.main import create_app

    assert isinstance(settings, Settings)
    if settings.redis.url is None:
        pytest.skip("needs the shared cache (ATRIUM_TEST_REDIS_URL)")
    uid, headers = await signed_in_as(client, ctx, "adm@example.com", "admin")
    other = create_app(settings, ctx.clock)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://n2") as node2:
            assert (await node2.get(USERS, headers=headers)).status_code == 200
            await client.delete(f"{USERS}/{uid}/roles/admin", headers=root)
            assert (await node2.get(USERS, headers=headers)).status_code == 403


# --- escalation ----------------------------------------------------------------------------


async def test_granting_a_role_with_permissions_not_held_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    await client.post(ROLES, headers=root, json={"name": "auditor", "permissions": ["audit:read"]})
    await client.post(ROLES, headers=root, json={"name": "keeper", "permissions": ["roles:manage"]})
    _, admin = await signed_in_as(client, ctx, "adm@example.com", "admin")
    target = await register(client, "t@example.com")

    escalate = await client.put(f"{USERS}/{target['id']}/roles/superadmin", headers=admin)
    keeper = await client.put(f"{USERS}/{target['id']}/roles/keeper", headers=admin)
    allowed = await client.put(f"{USERS}/{target['id']}/roles/auditor", headers=admin)

    assert escalate.status_code == 403
    assert escalate.json()["code"] == "escalation_refused"
    assert "roles:manage" in escalate.json()["detail"]
    assert keeper.status_code == 403
    assert allowed.status_code == 200


async def test_admin_cannot_grant_itself_superadmin(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    uid, admin = await signed_in_as(client, ctx, "adm@example.com", "admin")
    response = await client.put(f"{USERS}/{uid}/roles/superadmin", headers=admin)
    assert response.status_code == 403
    assert "superadmin" not in (await client.get(f"{USERS}/{uid}", headers=root)).json()["roles"]


async def test_admin_cannot_act_on_a_more_privileged_account(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    root_id = (await client.get("/api/v1/users/me", headers=root)).json()["id"]
    _, admin = await signed_in_as(client, ctx, "adm@example.com", "admin")

    suspend = await client.patch(f"{USERS}/{root_id}", headers=admin, json={"status": "suspended"})
    delete = await client.delete(f"{USERS}/{root_id}", headers=admin)

    assert suspend.status_code == 403
    assert delete.status_code == 403
    assert (await client.get("/api/v1/users/me", headers=root)).status_code == 200


# --- the last superadmin -------------------------------------------------------------------


async def test_last_superadmin_cannot_lose_the_role(
    client: httpx.AsyncClient, root: dict[str, str]
) -> None:
    root_id = (await client.get("/api/v1/users/me", headers=root)).json()["id"]

    revoke = await client.delete(f"{USERS}/{root_id}/roles/superadmin", headers=root)
    suspend = await client.patch(f"{USERS}/{root_id}", headers=root, json={"status": "suspended"})
    delete = await client.delete(f"{USERS}/{root_id}", headers=root)
    self_delete = await client.request(
        "DELETE", "/api/v1/users/me", headers=root, json={"password": PASSWORD}
    )

    for response in (revoke, suspend, delete, self_delete):
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "last_superadmin"
    me = await client.get("/api/v1/users/me", headers=root)
    assert me.json()["is_superuser"] is True


async def test_a_superadmin_can_be_removed_while_another_remains(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    other_id, _ = await signed_in_as(client, ctx, "root2@example.com", "superadmin")
    response = await client.delete(f"{USERS}/{other_id}/roles/superadmin", headers=root)
    assert response.status_code == 200
    assert response.json() == ["user"]


async def test_two_superadmins_removing_each_other_at_once_leave_one(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    a_id, a = await signed_in_as(client, ctx, "a@example.com", "superadmin")
    b_id, b = await signed_in_as(client, ctx, "b@example.com", "superadmin")

    responses = await asyncio.gather(
        client.delete(f"{USERS}/{b_id}/roles/superadmin", headers=a),
        client.delete(f"{USERS}/{a_id}/roles/superadmin", headers=b),
    )

    codes = sorted(r.status_code for r in responses)
    assert codes in ([200, 409], [200, 403])  # the loser is refused, or no longer allowed
    async with ctx.sessionmaker() as db:
        holders = await RoleRepository(db).live_superadmins()
    assert holders in ({uuid.UUID(a_id)}, {uuid.UUID(b_id)})
