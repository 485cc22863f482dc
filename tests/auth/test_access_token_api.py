"""Access tokens at the HTTP boundary: forged and malformed bearer tokens are refused with
401 problem details (never a 500), and the published JWKS is enough to verify a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.tokens import SigningKey, load_or_create_signing_key
from tests.factories import login, register

ME = "/api/v1/users/me"
JWKS = "/.well-known/jwks.json"
PROBLEM_JSON = "application/problem+json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 public JWK, computed independently."""
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass
class Victim:
    """A signed-in user's genuine token, the public JWKS, and (for tests that must change
    only one claim) the server's real signing key."""

    user_id: str
    token: str
    jwk: dict[str, str]
    server_key: SigningKey

    @property
    def header(self) -> dict[str, Any]:
        return json.loads(b64url_decode(self.token.split(".")[0]))  # type: ignore[no-any-return]

    @property
    def claims(self) -> dict[str, Any]:
        return json.loads(b64url_decode(self.token.split(".")[1]))  # type: ignore[no-any-return]

    @property
    def public_key_bytes(self) -> bytes:
        return b64url_decode(self.jwk["x"])


@pytest.fixture
async def victim(client: httpx.AsyncClient, ctx: AppContext) -> Victim:
    user = await register(client, "victim@example.com")
    tokens = await login(client, "victim@example.com")
    jwks = (await client.get(JWKS)).json()
    return Victim(
        user_id=user["id"],
        token=tokens["access_token"],
        jwk=jwks["keys"][0],
        server_key=load_or_create_signing_key(ctx.settings),
    )


# --- forged and malformed tokens --------------------------------------------------------


def _sign(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    return f"{signing_input}.{b64url(key.private_key.sign(signing_input.encode()))}"


def _hs256(secret: bytes, v: Victim) -> str:
    header = {**v.header, "alg": "HS256"}
    signing_input = f"{b64json(header)}.{b64json(v.claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def alg_none(v: Victim) -> str:
    return f"{b64json({**v.header, 'alg': 'none'})}.{b64json(v.claims)}."


def alg_none_uppercase_with_signature(v: Victim) -> str:
    signature = v.token.split(".")[2]
    return f"{b64json({**v.header, 'alg': 'NONE'})}.{b64json(v.claims)}.{signature}"


def hs256_with_raw_jwks_key(v: Victim) -> str:
    return _hs256(v.public_key_bytes, v)


def hs256_with_pem_jwks_key(v: Victim) -> str:
    pem = Ed25519PublicKey.from_public_bytes(v.public_key_bytes).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _hs256(pem, v)


def jku_to_attacker_jwks(v: Victim) -> str:
    attacker = SigningKey.generate()
    header = {**v.header, "kid": attacker.kid, "jku": "https://attacker.example/jwks.json"}
    return _sign(attacker, header, v.claims)


def embedded_attacker_jwk(v: Victim) -> str:
    attacker = SigningKey.generate()
    header = {**v.header, "kid": attacker.kid, "jwk": attacker.public_jwk}
    return _sign(attacker, header, v.claims)


def unknown_kid(v: Victim) -> str:
    attacker = SigningKey.generate()
    return _sign(attacker, {**v.header, "kid": attacker.kid}, v.claims)


def path_kid(v: Victim) -> str:
    return _sign(v.server_key, {**v.header, "kid": "../../etc/passwd"}, v.claims)


def other_key_with_our_kid(v: Victim) -> str:
    return _sign(SigningKey.generate(), v.header, v.claims)


def wrong_audience(v: Victim) -> str:
    return _sign(v.server_key, v.header, {**v.claims, "aud": "another-service"})


def wrong_issuer(v: Victim) -> str:
    return _sign(v.server_key, v.header, {**v.claims, "iss": "https://evil.example"})


def typ_jwt(v: Victim) -> str:
    return _sign(v.server_key, {**v.header, "typ": "JWT"}, v.claims)


def tampered_subject(v: Victim) -> str:
    header, _, signature = v.token.split(".")
    return f"{header}.{b64json({**v.claims, 'sub': str(uuid.uuid4())})}.{signature}"


def stripped_signature(v: Victim) -> str:
    header, payload, _ = v.token.split(".")
    return f"{header}.{payload}."


def two_segments(v: Victim) -> str:
    header, payload, _ = v.token.split(".")
    return f"{header}.{payload}"


def four_segments(v: Victim) -> str:
    return f"{v.token}.{v.token.split('.')[2]}"


def bad_base64_header(v: Victim) -> str:
    _, payload, signature = v.token.split(".")
    return f"!!!!.{payload}.{signature}"


def bad_base64_signature(v: Victim) -> str:
    header, payload, signature = v.token.split(".")
    return f"{header}.{payload}.{signature[:10]}*{signature[10:]}"


def non_json_header(v: Victim) -> str:
    _, payload, signature = v.token.split(".")
    return f"{b64url(b'not json')}.{payload}.{signature}"


def one_megabyte_header(v: Victim) -> str:
    # Only alg, typ and kid, validly signed by the server key: refused for its size alone.
    header = json.dumps(v.header, separators=(",", ":")).replace(",", "," + " " * 1_000_000, 1)
    signing_input = f"{b64url(header.encode())}.{b64json(v.claims)}"
    return f"{signing_input}.{b64url(v.server_key.private_key.sign(signing_input.encode()))}"


def non_uuid_subject(v: Victim) -> str:
    return _sign(v.server_key, v.header, {**v.claims, "sub": "admin"})


INVALID_TOKENS: list[Callable[[Victim], str]] = [
    alg_none,
    alg_none_uppercase_with_signature,
    hs256_with_raw_jwks_key,
    hs256_with_pem_jwks_key,
    jku_to_attacker_jwks,
    embedded_attacker_jwk,
    unknown_kid,
    path_kid,
    other_key_with_our_kid,
    wrong_audience,
    wrong_issuer,
    typ_jwt,
    tampered_subject,
    stripped_signature,
    two_segments,
    four_segments,
    bad_base64_header,
    bad_base64_signature,
    non_json_header,
    one_megabyte_header,
    non_uuid_subject,
]


def assert_problem(response: httpx.Response, code: str, www_authenticate: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"] == www_authenticate


async def test_genuine_token_is_accepted(client: httpx.AsyncClient, victim: Victim) -> None:
    """Control for the attacks below: the token they are derived from works."""
    response = await client.get(ME, headers={"Authorization": f"Bearer {victim.token}"})

    assert response.status_code == 200
    assert response.json()["id"] == victim.user_id


async def test_token_re_signed_with_the_server_key_is_accepted(
    client: httpx.AsyncClient, victim: Victim
) -> None:
    """Control for the one-claim forgeries below: re-signing alone changes nothing."""
    token = _sign(victim.server_key, victim.header, victim.claims)

    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


@pytest.mark.parametrize("forge", INVALID_TOKENS, ids=lambda f: f.__name__)
async def test_forged_or_malformed_token_answers_401_invalid_token(
    client: httpx.AsyncClient, victim: Victim, forge: Callable[[Victim], str]
) -> None:
    response = await client.get(ME, headers={"Authorization": f"Bearer {forge(victim)}"})

    assert_problem(response, "invalid_token", 'Bearer error="invalid_token"')


async def test_expired_token_answers_401_invalid_token(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock, victim: Victim
) -> None:
    clock.advance(seconds=ctx.settings.auth.access_token_ttl_seconds)

    response = await client.get(ME, headers={"Authorization": f"Bearer {victim.token}"})

    assert_problem(response, "invalid_token", 'Bearer error="invalid_token"')


async def test_token_is_still_accepted_one_second_before_expiry(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock, victim: Victim
) -> None:
    clock.advance(seconds=ctx.settings.auth.access_token_ttl_seconds - 1)

    response = await client.get(ME, headers={"Authorization": f"Bearer {victim.token}"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(lambda v: "Basic dmljdGltQGV4YW1wbGUuY29tOnB3", id="basic-scheme"),
        pytest.param(lambda v: f"Token {v.token}", id="token-scheme-with-genuine-token"),
        pytest.param(lambda v: f"JWT {v.token}", id="jwt-scheme-with-genuine-token"),
        pytest.param(lambda v: v.token, id="no-scheme"),
        pytest.param(lambda v: "Bearer", id="bearer-without-token"),
        pytest.param(lambda v: "Bearer ", id="bearer-with-empty-token"),
        pytest.param(lambda v: "", id="empty-header"),
    ],
)
async def test_no_bearer_token_answers_401_not_authenticated(
    client: httpx.AsyncClient, victim: Victim, authorization: Callable[[Victim], str]
) -> None:
    response = await client.get(ME, headers={"Authorization": authorization(victim)})

    assert_problem(response, "not_authenticated", "Bearer")


async def test_missing_authorization_header_answers_401_not_authenticated(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(ME)

    assert_problem(response, "not_authenticated", "Bearer")


async def test_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient, victim: Victim) -> None:
    response = await client.get(ME, headers={"Authorization": f"bearer {victim.token}"})

    assert response.status_code == 200


# --- the published JWKS ---------------------------------------------------------------


async def test_jwks_publishes_one_ed25519_signing_key(client: httpx.AsyncClient) -> None:
    response = await client.get(JWKS)

    assert response.status_code == 200
    (jwk,) = response.json()["keys"]
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA"
    assert jwk["use"] == "sig"
    assert len(b64url_decode(jwk["x"])) == 32


async def test_jwks_has_no_private_key_material(client: httpx.AsyncClient) -> None:
    (jwk,) = (await client.get(JWKS)).json()["keys"]

    assert "d" not in jwk
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}


async def test_jwks_kid_is_the_rfc7638_thumbprint(client: httpx.AsyncClient) -> None:
    (jwk,) = (await client.get(JWKS)).json()["keys"]

    assert jwk["kid"] == thumbprint(jwk["x"])


async def test_issued_token_names_the_jwks_kid(client: httpx.AsyncClient, victim: Victim) -> None:
    (jwk,) = (await client.get(JWKS)).json()["keys"]

    assert jwt.get_unverified_header(victim.token)["kid"] == jwk["kid"]


async def test_jwks_is_publicly_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.get(JWKS)

    assert response.headers["cache-control"] == "public, max-age=300"


async def test_login_token_verifies_with_plain_pyjwt_from_the_jwks_alone(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "ada@example.com")
    token = (await login(client, "ada@example.com"))["access_token"]
    keys = (await client.get(JWKS)).json()["keys"]

    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
    claims = jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        audience=ctx.settings.auth.audience,
        issuer=ctx.settings.auth.issuer,
        options={"require": ["exp", "iat", "sub"]},
    )

    assert claims["sub"] == user["id"]
