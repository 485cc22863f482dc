"""Importing accounts through the API: every format, every hash type, errors by line,
all or nothing, re-runs that update, and the permission."""

from __future__ import annotations

import json
from typing import Any

import argon2
import httpx
import pytest
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.models import Profile, User, UserRole
from tests.factories import signed_in_as
from tests.imports import hashes

IMPORT = "/api/v1/admin/users/import"


@pytest.fixture
async def root(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _, headers = await signed_in_as(client, ctx, "root@example.net", "superadmin")
    return headers


async def run_import(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: str | bytes,
    fmt: str = "csv",
    **params: Any,
) -> dict[str, Any]:
    """Start an import, check the 202, and answer the finished import's status."""
    data = content.encode() if isinstance(content, str) else content
    started = await client.post(
        IMPORT,
        headers=headers,
        params={"format": fmt, **params},
        files={"file": (f"users.{fmt}", data, "text/plain")},
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "pending"
    location = started.headers["Location"]
    finished = await client.get(location, headers=headers)
    assert finished.status_code == 200, finished.text
    body: dict[str, Any] = finished.json()
    return body


async def accounts(ctx: AppContext) -> dict[str, User]:
    async with ctx.sessionmaker() as db:
        users = (await db.execute(select(User))).scalars().all()
        return {u.email_normalized: u for u in users}


async def roles_of(ctx: AppContext, email: str) -> set[str]:
    from atrium.models import Role

    async with ctx.sessionmaker() as db:
        rows = await db.execute(
            select(Role.name)
            .join(UserRole, UserRole.role_id == Role.id)
            .join(User, User.id == UserRole.user_id)
            .where(User.email_normalized == email)
        )
        return set(rows.scalars())


async def login_status(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/login", data={"username": email, "password": password}
    )
    return response.status_code


CSV = (
    "email,password_hash,full_name,username,email_verified,roles,display_name,timezone\n"
    "Ada@Example.org,{h},Ada Lovelace,ada_l,true,moderator,Ada,Europe/London\n"
    "bob@example.org,,Bob Babbage,,false,,,\n"
)


async def test_csv_import_creates_accounts_with_roles_flags_and_profile(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    status = await run_import(client, root, CSV.format(h=hashes.bcrypt_hash()))

    assert status["status"] == "succeeded", status
    assert (status["records"], status["created"], status["updated"]) == (2, 2, 0)
    users = await accounts(ctx)
    ada, bob = users["ada@example.org"], users["bob@example.org"]
    assert (ada.email, ada.full_name, ada.username) == ("Ada@example.org", "Ada Lovelace", "ada_l")
    assert ada.email_verified_at is not None
    assert bob.email_verified_at is None
    assert await roles_of(ctx, "ada@example.org") == {"user", "moderator"}
    assert await roles_of(ctx, "bob@example.org") == {"user"}
    async with ctx.sessionmaker() as db:
        profile = await db.get(Profile, ada.id)
    assert profile is not None
    assert (profile.display_name, profile.timezone) == ("Ada", "Europe/London")
    # No hash in the file: no password signs in (a reset sets one).
    assert await login_status(client, "bob@example.org", "") in (401, 422)


@pytest.mark.parametrize(
    "make_hash",
    [hashes.bcrypt_hash, hashes.argon2id_weak, hashes.argon2i, hashes.django_pbkdf2],
    ids=["bcrypt", "argon2id", "argon2i", "django-pbkdf2-sha256"],
)
async def test_each_hash_type_signs_in_and_is_rehashed_to_argon2id(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str], make_hash: Any
) -> None:
    record = {"email": "carol@example.org", "password_hash": make_hash()}
    status = await run_import(client, root, json.dumps(record) + "\n", "json")
    assert status["status"] == "succeeded", status

    assert await login_status(client, "carol@example.org", "wrong password") == 401
    assert await login_status(client, "carol@example.org", hashes.PASSWORD) == 200

    stored = (await accounts(ctx))["carol@example.org"].password_hash
    params = argon2.extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (params.memory_cost, params.time_cost) == (
        ctx.settings.auth.argon2_memory_cost_kib,
        ctx.settings.auth.argon2_time_cost,
    )
    assert await login_status(client, "carol@example.org", hashes.PASSWORD) == 200


@pytest.mark.parametrize(
    "credential", [hashes.keycloak_pbkdf2, hashes.keycloak_argon2], ids=["pbkdf2", "argon2"]
)
async def test_keycloak_realm_export_imports_and_its_passwords_sign_in(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str], credential: Any
) -> None:
    realm = {
        "realm": "acme",
        "users": [
            {
                "username": "dora.k",
                "email": "dora@example.org",
                "emailVerified": True,
                "enabled": True,
                "firstName": "Dora",
                "lastName": "Keycloak",
                "createdTimestamp": 1700000000000,
                "attributes": {"locale": ["fr"]},
                "credentials": [credential()],
                "realmRoles": ["default-roles-acme", "offline_access", "moderator"],
            },
            {"username": "eve@example.org", "email": "eve@example.org", "enabled": False},
        ],
    }
    status = await run_import(client, root, json.dumps(realm), "keycloak")
    assert status["status"] == "succeeded", status

    users = await accounts(ctx)
    dora, eve = users["dora@example.org"], users["eve@example.org"]
    assert (dora.username, dora.full_name, dora.locale) == ("dora.k", "Dora Keycloak", "fr")
    assert dora.created_at.year == 2023
    assert dora.email_verified_at is not None
    assert await roles_of(ctx, "dora@example.org") == {"user", "moderator"}
    assert (eve.username, eve.status) == (None, "suspended")
    assert await login_status(client, "dora@example.org", hashes.PASSWORD) == 200
    assert (await accounts(ctx))["dora@example.org"].password_hash.startswith("$argon2id$")


async def test_auth0_export_imports_names_roles_and_bcrypt_hashes(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    lines = [
        {
            "_id": {"$oid": "60425dc43519d90068f82973"},
            "email": "fay@example.org",
            "email_verified": True,
            "given_name": "Fay",
            "family_name": "Zero",
            "nickname": "fayz",
            "app_metadata": {"roles": ["moderator"]},
            "passwordHash": hashes.bcrypt_hash(),
        },
        {
            "email": "gus@example.org",
            "name": "Gus",
            "blocked": True,
            "custom_password_hash": {
                "algorithm": "argon2",
                "hash": {"value": hashes.argon2id_weak()},
            },
        },
    ]
    content = "\n".join(json.dumps(line) for line in lines)
    status = await run_import(client, root, content, "auth0")
    assert status["status"] == "succeeded", status

    users = await accounts(ctx)
    assert users["fay@example.org"].full_name == "Fay Zero"
    assert users["gus@example.org"].status == "suspended"
    assert await roles_of(ctx, "fay@example.org") == {"user", "moderator"}
    assert await login_status(client, "fay@example.org", hashes.PASSWORD) == 200


async def test_malformed_records_fail_the_whole_import_with_errors_by_line(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    content = (
        "email,password_hash,roles,username,email_verified\n"
        "ok@example.org,,,,\n"
        "not-an-email,,,,\n"
        "\n"
        "x@example.org,5f4dcc3b5aa765d61d8327deb882cf99,,,\n"
        "y@example.org,,wizard,,\n"
        "z@example.org,,,A!,maybe\n"
        "w@example.org,too,many,columns,here,yes\n"
    )
    before = len(await accounts(ctx))
    status = await run_import(client, root, content)

    assert status["status"] == "failed"
    assert status["created"] == 0
    found = {(e["line"], e["field"]) for e in status["errors"]}
    assert found == {
        (3, "email"),
        (5, "password_hash"),
        (6, "roles"),
        (7, "username"),
        (7, "email_verified"),
        (8, None),
    }
    assert status["error_count"] == 6
    assert len(await accounts(ctx)) == before  # not even the valid first record


async def test_duplicates_in_the_file_and_taken_usernames_are_errors(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    first = await run_import(client, root, "email,username\nhal@example.org,hal9000\n")
    assert first["status"] == "succeeded"
    content = (
        "email,username\n"
        "ian@example.org,ian_1\n"
        "IAN@example.org,\n"
        "jo@example.org,ian_1\n"
        "kim@example.org,hal9000\n"
    )
    status = await run_import(client, root, content)

    assert status["status"] == "failed"
    assert [(e["line"], e["field"], e["message"]) for e in status["errors"]] == [
        (3, "email", "the same email as record 1"),
        (4, "username", "the same username as record 1"),
        (5, "username", "the username belongs to another account"),
    ]
    assert "ian@example.org" not in await accounts(ctx)


async def test_a_rerun_updates_the_same_accounts_and_never_duplicates(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    first = await run_import(client, root, CSV.format(h=hashes.bcrypt_hash()))
    ids = {k: u.id for k, u in (await accounts(ctx)).items()}
    changed = CSV.format(h=hashes.bcrypt_hash()).replace("Bob Babbage", "Robert Babbage")
    second = await run_import(client, root, changed)

    assert (first["created"], second["created"], second["updated"]) == (2, 0, 2)
    after = await accounts(ctx)
    assert {k: u.id for k, u in after.items()} == ids
    assert after["bob@example.org"].full_name == "Robert Babbage"
    assert await roles_of(ctx, "ada@example.org") == {"user", "moderator"}
    async with ctx.sessionmaker() as db:
        grants = await db.scalar(select(func.count()).select_from(UserRole))
        profiles = await db.scalar(select(func.count()).select_from(Profile))
    assert (grants, profiles) == (5, 1)  # root: user, superadmin; ada: user, moderator; bob: user


async def test_a_dry_run_reports_the_counts_and_changes_nothing(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    before = await accounts(ctx)
    status = await run_import(client, root, CSV.format(h=hashes.bcrypt_hash()), dry_run="true")

    assert (status["status"], status["dry_run"], status["created"]) == ("succeeded", True, 2)
    assert (await accounts(ctx)).keys() == before.keys()


async def test_importing_needs_the_users_import_permission(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, admin = await signed_in_as(client, ctx, "admin@example.net", "admin")
    response = await client.post(
        IMPORT, headers=admin, files={"file": ("u.csv", b"email\na@example.org\n", "text/csv")}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_an_empty_file_is_refused(client: httpx.AsyncClient, root: dict[str, str]) -> None:
    response = await client.post(IMPORT, headers=root, files={"file": ("u.csv", b"", "text/csv")})
    assert response.status_code == 422
    assert response.json()["code"] == "empty_import"


async def test_an_unknown_import_is_404(client: httpx.AsyncClient, root: dict[str, str]) -> None:
    response = await client.get(
        "/api/v1/admin/users/imports/00000000-0000-4000-8000-00000000abcd", headers=root
    )
    assert response.status_code == 404
    assert response.json()["code"] == "import_not_found"


async def test_a_rerun_is_seen_at_once_by_cached_public_profiles(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    await run_import(client, root, CSV.format(h=hashes.bcrypt_hash()))
    cached = await client.get("/api/v1/profiles/ada_l")  # now in the profile cache
    changed = (
        CSV.format(h=hashes.bcrypt_hash())
        .replace(",ada_l,", ",ada_lovelace,")
        .replace(",Ada,Europe", ",Countess Lovelace,Europe")
    )
    status = await run_import(client, root, changed)

    assert (cached.status_code, cached.json()["display_name"]) == (200, "Ada")
    assert (status["status"], status["updated"]) == ("succeeded", 2)
    assert (await client.get("/api/v1/profiles/ada_l")).status_code == 404
    renamed = await client.get("/api/v1/profiles/ada_lovelace")
    assert (renamed.status_code, renamed.json()["display_name"]) == (200, "Countess Lovelace")


async def test_a_role_granted_to_an_existing_account_applies_on_its_next_request(
    client: httpx.AsyncClient, ctx: AppContext, root: dict[str, str]
) -> None:
    _, ada = await signed_in_as(client, ctx, "ada@example.org")
    before = await client.get("/api/v1/admin/users", headers=ada)  # grants now cached
    status = await run_import(client, root, "email,roles\nada@example.org,admin\n")

    assert before.status_code == 403
    assert (status["status"], status["updated"]) == ("succeeded", 1)
    assert (await client.get("/api/v1/admin/users", headers=ada)).status_code == 200


async def test_only_accounts_whose_public_profile_changes_are_refreshed(ctx: AppContext) -> None:
    from io import StringIO

    from atrium.imports.formats import ImportFormat
    from atrium.imports.service import import_users

    async def run(content: str, **options: Any) -> list[str]:
        outcome = await import_users(
            ctx.engine, StringIO(content), ImportFormat.csv, now=ctx.clock.now(), **options
        )
        assert outcome.ok, outcome.errors
        return outcome.updated_usernames

    header = "email,username,full_name,display_name\n"
    created = await run(header + "ada@example.org,ada_l,Ada,\nbob@example.org,bob_b,Bob,\n")
    same = await run(header + "ada@example.org,ada_l,Ada Lovelace,\nbob@example.org,,Bob B,\n")
    dry = await run(header + "ada@example.org,ada_new,,\n", dry_run=True)
    changed = await run(header + "ada@example.org,ada_new,,\nbob@example.org,,,Bobby\n")

    assert created == []  # new accounts have nothing cached
    assert same == []  # full names are not in the public view; same username
    assert dry == []  # a dry run changes nothing
    assert sorted(changed) == ["ada_l", "bob_b"]  # the names as they were
