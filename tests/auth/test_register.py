"""Registration through the API: response shape, email normalisation, the password policy
and the refusal of malformed bodies (always 422, never 500, never echoing the password)."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.models import User, UserRole
from atrium.models.role import BUILTIN_ROLE_IDS, USER
from atrium.users.password_policy import common_passwords
from tests.factories import PASSWORD, register

URL = "/api/v1/auth/register"


async def _post(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(URL, json={"email": email, "password": password})


def _error_types(response: httpx.Response) -> set[str]:
    return {err["type"] for err in response.json()["errors"]}


async def _user_count(ctx: AppContext) -> int:
    async with ctx.sessionmaker() as db:
        return (await db.execute(select(func.count()).select_from(User))).scalar_one()


# --- success -------------------------------------------------------------------------------


async def test_register_returns_201_and_the_new_user(client: httpx.AsyncClient) -> None:
    response = await _post(client, "ada@example.com")

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["status"] == "active"
    assert body["is_superuser"] is False
    assert body["email_verified"] is False
    assert body["last_login_at"] is None


async def test_register_response_has_no_password_or_hash_field(client: httpx.AsyncClient) -> None:
    response = await _post(client, "ada@example.com")

    assert response.status_code == 201
    leaked = [k for k in response.json() if "password" in k.lower() or "hash" in k.lower()]
    assert leaked == []


async def test_register_lower_cases_the_domain_and_keeps_the_local_part(
    client: httpx.AsyncClient,
) -> None:
    response = await _post(client, "Ada@Example.COM")

    assert response.status_code == 201
    assert response.json()["email"] == "Ada@example.com"


async def test_register_same_email_in_another_case_is_email_taken(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "Ada@Example.COM")

    response = await _post(client, "ada@example.com")

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_register_same_email_twice_creates_one_user(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")

    response = await _post(client, "ADA@example.com")

    assert response.status_code == 409
    assert await _user_count(ctx) == 1


async def test_register_nfc_and_nfd_forms_of_one_address_collide(
    client: httpx.AsyncClient,
) -> None:
    nfc = unicodedata.normalize("NFC", "josé@example.com")
    nfd = unicodedata.normalize("NFD", "josé@example.com")
    assert nfc != nfd
    await register(client, nfc)

    response = await _post(client, nfd)

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_register_punycode_and_unicode_domains_collide(client: httpx.AsyncClient) -> None:
    await register(client, "ada@BÜCHER.de")

    response = await _post(client, "ada@xn--bcher-kva.de")

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


async def test_register_stores_the_nfd_address_in_nfc(client: httpx.AsyncClient) -> None:
    response = await _post(client, unicodedata.normalize("NFD", "josé@example.com"))

    assert response.status_code == 201
    assert response.json()["email"] == unicodedata.normalize("NFC", "josé@example.com")


# --- invalid emails ------------------------------------------------------------------------

EMAIL_255 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
EMAIL_321 = "a" * 309 + "@example.com"


@pytest.mark.parametrize(
    ("email", "code"),
    [
        pytest.param("ada.example.com", "invalid_email", id="no-at"),
        pytest.param("ada@lovelace@example.com", "invalid_email", id="two-at"),
        pytest.param("ada@@example.com", "invalid_email", id="double-at"),
        pytest.param("", "invalid_email", id="empty"),
        pytest.param("ada lovelace@example.com", "invalid_email", id="space-in-local-part"),
        pytest.param(" ada@example.com", "invalid_email", id="leading-space"),
        pytest.param("ada@exa mple.com", "invalid_email", id="space-in-domain"),
        # Within the schema's 320 characters but beyond the 254 an address may have.
        pytest.param(EMAIL_255, "invalid_email", id="255-chars"),
        pytest.param(EMAIL_321, "validation_error", id="321-chars"),
        pytest.param("a" * 988 + "@example.com", "validation_error", id="1000-chars"),
    ],
)
async def test_register_invalid_email_is_422(
    client: httpx.AsyncClient, ctx: AppContext, email: str, code: str
) -> None:
    response = await _post(client, email)

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert await _user_count(ctx) == 0


def test_long_email_cases_have_the_intended_lengths() -> None:
    assert (len(EMAIL_255), len(EMAIL_321)) == (255, 321)


# --- password policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        pytest.param("ada@example.com", "Xk7#pQ2", "too_short", id="7-chars"),
        pytest.param("ada@example.com", "Xk7#pQ2m" * 16 + "z", "too_long", id="129-chars"),
        pytest.param("ada@example.com", "password1", "common", id="password1"),
        pytest.param("ada@example.com", "qwerty123", "common", id="qwerty123"),
        pytest.param("ada@example.com", "PassWord1", "common", id="common-any-case"),
        pytest.param("lovelace@example.com", "LoveLace-1815", "contains_email", id="local-part"),
        pytest.param(
            "lovelace@example.com", "lovelace password", "contains_email", id="local-part-common"
        ),
        pytest.param(
            "Lovelace@example.com", "xx lovelace yy", "contains_email", id="local-part-cased"
        ),
    ],
)
async def test_register_weak_password_is_422_weak_password(
    client: httpx.AsyncClient, email: str, password: str, reason: str
) -> None:
    response = await _post(client, email, password)

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "weak_password"
    assert _error_types(response) == {reason}
    assert all(err["loc"] == ["body", "password"] for err in body["errors"])


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("admin@example.com", "a long admin passphrase"),
        ("ada@example.com", "ada's correct horse battery"),
    ],
)
async def test_register_accepts_a_passphrase_that_merely_contains_the_local_part(
    client: httpx.AsyncClient, email: str, password: str
) -> None:
    response = await _post(client, email, password)

    assert response.status_code == 201, response.text


async def test_register_weak_password_creates_no_user(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await _post(client, "ada@example.com", "password1")

    assert response.status_code == 422
    assert await _user_count(ctx) == 0


async def test_register_lists_every_broken_password_rule(client: httpx.AsyncClient) -> None:
    # Four characters, and the email's local part inside.
    response = await _post(client, "bob@example.com", "bob7")

    assert response.status_code == 422
    assert _error_types(response) == {"too_short", "contains_email"}


@pytest.mark.parametrize("password", ["password1", "qwerty123"])
def test_test_passwords_are_in_the_common_list(password: str) -> None:
    assert password in common_passwords()


def test_common_password_list_has_at_least_10000_entries() -> None:
    assert len(common_passwords()) >= 10_000


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Xk7#pQ2m", id="8-chars"),
        pytest.param("Xk7#pQ2m" * 16, id="128-chars"),
    ],
)
async def test_register_accepts_password_at_length_limit(
    client: httpx.AsyncClient, password: str
) -> None:
    assert len(password) in (8, 128)

    response = await _post(client, "ada@example.com", password)

    assert response.status_code == 201


async def test_registered_password_at_128_chars_logs_in(client: httpx.AsyncClient) -> None:
    password = "Xk7#pQ2m" * 16
    await register(client, "ada@example.com", password)

    response = await client.post(
        "/api/v1/auth/login", data={"username": "ada@example.com", "password": password}
    )

    assert response.status_code == 200


# --- malformed bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"is_superuser": True}, id="is_superuser"),
        pytest.param({"status": "active"}, id="status"),
        pytest.param({"email_verified": True}, id="email_verified"),
    ],
)
async def test_register_unknown_field_is_422_validation_error(
    client: httpx.AsyncClient, ctx: AppContext, extra: dict[str, Any]
) -> None:
    response = await client.post(
        URL, json={"email": "ada@example.com", "password": PASSWORD, **extra}
    )

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert [err["type"] for err in body["errors"]] == ["extra_forbidden"]
    assert await _user_count(ctx) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": 12345, "password": PASSWORD}, id="email-int"),
        pytest.param({"email": ["ada@example.com"], "password": PASSWORD}, id="email-list"),
        pytest.param({"email": None, "password": PASSWORD}, id="email-null"),
        pytest.param({"email": "ada@example.com", "password": 12345678}, id="password-int"),
        pytest.param({"email": "ada@example.com", "password": True}, id="password-bool"),
        pytest.param({"email": "ada@example.com", "password": {"a": 1}}, id="password-object"),
        pytest.param({"email": "ada@example.com", "password": None}, id="password-null"),
        pytest.param({"password": PASSWORD}, id="missing-email"),
        pytest.param({"email": "ada@example.com"}, id="missing-password"),
        pytest.param({}, id="empty-object"),
        pytest.param([], id="empty-array"),
        pytest.param([{"email": "ada@example.com", "password": PASSWORD}], id="array"),
        pytest.param("ada@example.com", id="json-string"),
        pytest.param(42, id="json-number"),
        pytest.param(None, id="json-null"),
    ],
)
async def test_register_malformed_json_body_is_422_validation_error(
    client: httpx.AsyncClient, body: Any
) -> None:
    response = await client.post(URL, json=body)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b"not json at all", "application/json", id="garbage-json-type"),
        pytest.param(
            b'{"email": "ada@example.com", "password": ', "application/json", id="truncated-json"
        ),
        pytest.param(b"\xff\xfe\x00garbage", "application/json", id="binary"),
        pytest.param(b"", "application/json", id="empty-body"),
        pytest.param(
            b"email=ada%40example.com&password=x",
            "application/x-www-form-urlencoded",
            id="form-body",
        ),
        pytest.param(b"not json", "text/plain", id="text-plain"),
    ],
)
async def test_register_non_json_body_is_422_validation_error(
    client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await client.post(URL, content=content, headers={"Content-Type": content_type})

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


SECRET = "Zq9-unique-secret-value-7Tx"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(
            {"email": "ada@example.com", "password": SECRET, "is_superuser": True},
            "validation_error",
            id="extra-field",
        ),
        pytest.param({"email": 12345, "password": SECRET}, "validation_error", id="bad-email-type"),
        pytest.param({"password": SECRET}, "validation_error", id="missing-email"),
        pytest.param(
            {"email": EMAIL_321, "password": SECRET},
            "validation_error",
            id="email-too-long",
        ),
        pytest.param(
            {"email": "ada@example.com", "password": SECRET * 40},
            "validation_error",
            id="password-over-1024",
        ),
        pytest.param(
            {"email": "ada@example.com", "password": [SECRET]}, "validation_error", id="list"
        ),
        pytest.param({"email": "nope", "password": SECRET}, "invalid_email", id="invalid-email"),
        pytest.param(
            {"email": "zq9-unique-secret-value-7tx@example.com", "password": SECRET},
            "weak_password",
            id="weak-password",
        ),
    ],
)
async def test_register_error_never_echoes_the_password(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    response = await client.post(URL, json=body)

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert SECRET not in response.text
    assert SECRET.lower() not in response.text.lower()


async def test_register_invalid_json_never_echoes_the_password(client: httpx.AsyncClient) -> None:
    content = ('{"email": "ada@example.com", "password": "' + SECRET + '",}').encode()

    response = await client.post(URL, content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert SECRET not in response.text


async def test_register_writes_its_rows_without_reading_first(
    client: httpx.AsyncClient, ctx: AppContext, queries: Any
) -> None:
    """The account, its `user` grant, the audit event, the event, the verification token
    and its email: six INSERTs and no read (a new account holds no role to look up)."""
    queries.statements.clear()
    body = await register(client, "ada@example.com")

    tables = [" ".join(q.split()[:3]) for q in queries.statements]
    assert tables == [
        "INSERT INTO user_account",
        "INSERT INTO user_role",
        "INSERT INTO audit_event",
        "INSERT INTO event",
        "INSERT INTO email_token",
        "INSERT INTO outbox_message",
    ], queries.statements
    async with ctx.sessionmaker() as db:
        user = await db.get(User, uuid.UUID(body["id"]))
        assert user is not None
        grant = (await db.execute(select(UserRole).where(UserRole.user_id == user.id))).scalar_one()
    # The grant carries the account's sort keys, as every other grant does.
    assert (grant.role_id, grant.granted_at, grant.granted_by) == (
        BUILTIN_ROLE_IDS[USER],
        user.created_at,
        None,
    )
    assert (grant.user_created_at, grant.user_email_normalized, grant.user_last_login_at) == (
        user.created_at,
        user.email_normalized,
        None,
    )
