"""/api/v1/admin/identity-providers: permission, write-only secrets encrypted at rest,
settings providers read-only, and a stored provider that signs in."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.models import IdentityProvider
from tests.factories import signed_in_as
from tests.social.conftest import sign_in
from tests.social.fake_idp import CLIENT_ID, CLIENT_SECRET, FakeIdP
from tests.social.helpers import actions

URL = "/api/v1/admin/identity-providers"


async def _admin(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _id, headers = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    return headers


async def test_provider_administration_needs_the_permission(
    client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    _id, headers = await signed_in_as(client, ctx, "admin@example.com", "admin")

    response = await client.get(URL, headers=headers)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert (await client.get(URL)).status_code == 401


async def test_created_provider_keeps_its_secret_encrypted_and_never_shows_it(
    client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)
    body = {
        "id": "google",
        "preset": "google",
        "client_id": "1234.apps.googleusercontent.com",
        "client_secret": "GOCSPX-very-secret",
        "trust_email_verified": True,
    }

    created = await client.post(URL, json=body, headers=headers)

    assert created.status_code == 201, created.text
    read = created.json()
    assert read["issuer"] == "https://accounts.google.com"
    assert read["has_client_secret"] is True
    assert read["redirect_uri"].endswith("/api/v1/auth/oauth/google/callback")
    assert "GOCSPX" not in created.text
    listed = await client.get(URL, headers=headers)
    assert "GOCSPX" not in listed.text
    assert [p["id"] for p in listed.json()] == ["fake", "other", "gh", "google"]
    async with ctx.sessionmaker() as db:
        row = await db.scalar(select(IdentityProvider).where(IdentityProvider.slug == "google"))
    assert row is not None
    assert row.client_secret_encrypted is not None
    assert b"GOCSPX" not in row.client_secret_encrypted
    assert "GOCSPX" not in str(row.settings)
    assert "identity_provider.created" in await actions(ctx)


async def test_microsoft_preset_uses_the_tenant(
    client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)
    body = {
        "id": "entra",
        "preset": "microsoft",
        "tenant": "contoso.onmicrosoft.com",
        "client_id": "11111111-2222-3333-4444-555555555555",
    }

    created = await client.post(URL, json=body, headers=headers)

    assert created.status_code == 201
    assert (
        created.json()["issuer"] == "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    )


async def test_a_stored_provider_signs_in_with_its_decrypted_secret(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)
    body = {
        "id": "stored",
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "trust_email_verified": True,
    }
    assert (await client.post(URL, json=body, headers=headers)).status_code == 201

    response = await sign_in(browser, "stored")

    assert response.status_code == 303, response.text
    assert "__Host-atrium_session" in response.cookies


async def test_wrong_stored_secret_fails_at_the_token_endpoint(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)
    body = {
        "id": "stored",
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": "not-the-secret",
    }
    await client.post(URL, json=body, headers=headers)

    response = await sign_in(browser, "stored")

    assert response.status_code == 400
    assert response.json()["code"] == "authorization_denied"


async def test_update_disable_and_delete_a_stored_provider(
    client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)
    body = {"id": "corp", "issuer": "https://id.corp.example", "client_id": "c"}
    await client.post(URL, json=body, headers=headers)

    patched = await client.patch(
        f"{URL}/corp", json={"enabled": False, "client_secret": "s3cret"}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False
    assert patched.json()["has_client_secret"] is True
    assert (await client.get("/api/v1/auth/oauth/corp/authorize")).status_code == 404
    assert "corp" not in [
        p["id"] for p in (await client.get("/api/v1/auth/oauth/providers")).json()
    ]

    assert (await client.delete(f"{URL}/corp", headers=headers)).status_code == 204
    assert (await client.get(f"{URL}/corp", headers=headers)).status_code == 404


async def test_providers_of_the_settings_are_read_only(
    client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)

    patched = await client.patch(f"{URL}/fake", json={"enabled": False}, headers=headers)
    deleted = await client.delete(f"{URL}/fake", headers=headers)
    duplicate = await client.post(
        URL, json={"id": "fake", "issuer": "https://x.example", "client_id": "c"}, headers=headers
    )

    assert patched.status_code == 409
    assert patched.json()["code"] == "provider_read_only"
    assert deleted.status_code == 409
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "provider_exists"


async def test_invalid_provider_configurations_are_refused(
    client: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    headers = await _admin(client, ctx)
    cases = [
        {"id": "noissuer", "client_id": "c"},
        {"id": "plain", "issuer": "http://id.example", "client_id": "c"},
        {"id": "Bad Id", "issuer": "https://id.example", "client_id": "c"},
        {
            "id": "claims",
            "issuer": "https://id.example",
            "client_id": "c",
            "claim_mapping": {"is_superuser": "admin"},
        },
    ]
    for body in cases:
        response = await client.post(URL, json=body, headers=headers)
        assert response.status_code == 422, body


async def test_public_provider_list_names_the_enabled_providers(
    client: httpx.AsyncClient, idp: FakeIdP
) -> None:
    response = await client.get("/api/v1/auth/oauth/providers")

    assert response.status_code == 200
    first = response.json()[0]
    assert first["id"] == "fake"
    assert first["authorize_url"] == "/api/v1/auth/oauth/fake/authorize"
    assert "gh" in [p["id"] for p in response.json()]
