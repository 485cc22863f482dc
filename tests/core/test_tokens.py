"""Unit tests of access-token issuing and strict verification (atrium.core.tokens).

Every negative test changes exactly one thing about an otherwise valid token, and most
are signed with the real private key, so that the rejection can only come from the one
defect under test and not from a bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atrium.config import AuthSettings, Settings
from atrium.core.tokens import (
    CLOCK_SKEW_SECONDS,
    Assurance,
    SigningKey,
    TokenError,
    TokenService,
    load_or_create_signing_key,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PWD = Assurance(aal=1, amr=("pwd",), auth_time=int(NOW.timestamp()))
ISSUER = "https://id.example.test"
AUDIENCE = "atrium-api"
TTL = 600
USER_ID = uuid.UUID("6f1c2b9e-3a4d-4e5f-8a9b-0c1d2e3f4a5b")
SESSION_ID = uuid.UUID("0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d")

# RFC 8037 Appendix A.1 (Ed25519 private key) and A.3 (its RFC 7638 thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


# --- helpers -------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def segments(token: str) -> list[str]:
    return token.split(".")


def thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 public JWK, computed independently."""
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return b64url(hashlib.sha256(canonical.encode()).digest())


def make_settings(**auth: Any) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        auth=AuthSettings(issuer=ISSUER, audience=AUDIENCE, access_token_ttl_seconds=TTL, **auth),
    )


def valid_claims(**overrides: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(USER_ID),
        "sid": str(SESSION_ID),
        "client_id": AUDIENCE,
        "iat": iat,
        "exp": iat + TTL,
        "jti": "jti-0123456789abcdef",
        "acr": "aal1",
        "amr": ["pwd"],
        "auth_time": iat,
    }
    claims.update(overrides)
    return claims


def pyjwt_sign(key: SigningKey, claims: dict[str, Any], **headers: Any) -> str:
    """Sign with PyJWT and the real private key; ``headers`` add to or replace kid/typ."""
    return jwt.encode(
        claims,
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": "at+jwt", **headers},
    )


def raw_sign(private_key: Ed25519PrivateKey, header: Any, claims: Any) -> str:
    """A compact JWS with exactly ``header`` (any JSON value), validly signed by hand."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    return f"{signing_input}.{b64url(private_key.sign(signing_input.encode()))}"


def hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def service(key: SigningKey) -> TokenService:
    return TokenService(make_settings(), key)


@pytest.fixture
def token(service: TokenService) -> str:
    return service.issue(user_id=USER_ID, session_id=SESSION_ID, now=NOW, assurance=PWD)


def our_header(key: SigningKey, **changes: Any) -> dict[str, Any]:
    return {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid, **changes}


# --- issuing and the happy path -------------------------------------------------------


def test_issued_token_round_trips_user_and_session(service: TokenService, token: str) -> None:
    claims = service.verify(token, now=NOW)

    assert claims.user_id == USER_ID
    assert claims.session_id == SESSION_ID


def test_issued_token_expires_after_the_configured_ttl(service: TokenService, token: str) -> None:
    claims = service.verify(token, now=NOW)

    assert claims.issued_at == int(NOW.timestamp())
    assert claims.expires_at == int(NOW.timestamp()) + TTL


def test_issued_token_carries_issuer_audience_and_client_id(token: str) -> None:
    payload = json.loads(b64url_decode(segments(token)[1]))

    assert payload["iss"] == ISSUER
    assert payload["aud"] == AUDIENCE
    assert payload["client_id"] == AUDIENCE
    assert payload["sub"] == str(USER_ID)
    assert payload["sid"] == str(SESSION_ID)


def test_each_issued_token_has_a_fresh_jti(service: TokenService) -> None:
    first = service.issue(user_id=USER_ID, session_id=SESSION_ID, now=NOW, assurance=PWD)
    second = service.issue(user_id=USER_ID, session_id=SESSION_ID, now=NOW, assurance=PWD)

    assert service.verify(first, now=NOW).jti != service.verify(second, now=NOW).jti


def test_issued_header_is_exactly_alg_typ_and_kid(key: SigningKey, token: str) -> None:
    header = json.loads(b64url_decode(segments(token)[0]))

    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid}


def test_kid_is_the_rfc7638_thumbprint_of_the_public_key(key: SigningKey) -> None:
    assert key.kid == thumbprint(key.public_jwk["x"])


def test_kid_matches_the_rfc8037_test_vector() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))

    key = SigningKey.from_private_key(private)

    assert key.public_jwk["x"] == RFC8037_X
    assert key.kid == RFC8037_THUMBPRINT


def test_kid_is_stable_for_the_same_key(key: SigningKey) -> None:
    reloaded = SigningKey.from_pem(key.private_pem())

    assert reloaded.kid == key.kid


def test_kid_differs_between_keys(key: SigningKey) -> None:
    assert SigningKey.generate().kid != key.kid


def test_header_kid_matches_the_jwks_entry(service: TokenService, token: str) -> None:
    header = jwt.get_unverified_header(token)
    (jwk,) = service.jwks()["keys"]

    assert header["kid"] == jwk["kid"]
    assert jwk["kid"] == thumbprint(jwk["x"])


def test_jwks_entry_is_a_public_ed25519_signing_key(service: TokenService) -> None:
    (jwk,) = service.jwks()["keys"]

    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA"
    assert jwk["use"] == "sig"
    assert "d" not in jwk


def test_token_verifies_with_plain_pyjwt_and_the_jwks_key(
    service: TokenService, token: str
) -> None:
    (jwk,) = service.jwks()["keys"]

    payload = jwt.decode(
        token,
        jwt.PyJWK(jwk),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )

    assert payload["sub"] == str(USER_ID)


def test_hand_signed_token_with_our_header_verifies(key: SigningKey, service: TokenService) -> None:
    """Control for the helpers below: raw_sign with a correct header is accepted."""
    token = raw_sign(key.private_key, our_header(key), valid_claims())

    assert service.verify(token, now=NOW).user_id == USER_ID


def test_pyjwt_signed_token_with_valid_claims_verifies(
    key: SigningKey, service: TokenService
) -> None:
    """Control for the claim tests below: pyjwt_sign with valid claims is accepted."""
    token = pyjwt_sign(key, valid_claims())

    assert service.verify(token, now=NOW).session_id == SESSION_ID


def test_token_of_a_verification_key_is_accepted(key: SigningKey) -> None:
    retired = SigningKey.generate()
    service = TokenService(make_settings(), key, verification_keys=[retired])

    token = pyjwt_sign(retired, valid_claims())

    assert service.verify(token, now=NOW).user_id == USER_ID


# --- algorithm attacks ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("with_signature", [False, True], ids=["unsigned", "with-signature"])
def test_alg_none_is_rejected(
    key: SigningKey, service: TokenService, token: str, alg: str, with_signature: bool
) -> None:
    signing_input = f"{b64json(our_header(key, alg=alg))}.{b64json(valid_claims())}"
    signature = segments(token)[2] if with_signature else ""

    with pytest.raises(TokenError):
        service.verify(f"{signing_input}.{signature}", now=NOW)


def _raw_public(key: SigningKey) -> bytes:
    return key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _pem_public(key: SigningKey) -> bytes:
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _jwk_x(key: SigningKey) -> bytes:
    return key.public_jwk["x"].encode()


@pytest.mark.parametrize(
    "secret",
    [_raw_public, _pem_public, _jwk_x],
    ids=["raw-public-key", "pem-public-key", "jwk-x"],
)
def test_hs256_signed_with_the_public_key_is_rejected(
    key: SigningKey, service: TokenService, secret: Callable[[SigningKey], bytes]
) -> None:
    token = hs256(secret(key), our_header(key, alg="HS256"), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "Ed25519", "eddsa"])
def test_other_alg_over_a_valid_signature_is_rejected(
    key: SigningKey, service: TokenService, alg: str
) -> None:
    token = raw_sign(key.private_key, our_header(key, alg=alg), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_missing_alg_is_rejected(key: SigningKey, service: TokenService) -> None:
    header = {"typ": "at+jwt", "kid": key.kid}
    token = raw_sign(key.private_key, header, valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


# --- header parameters that could choose the key --------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jwk", "public-jwk"),
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("x5c", ["MIIBszCCAVmgAwIBAgIUQ"]),
        ("crit", ["exp"]),
    ],
    ids=["jwk", "jku", "x5u", "x5c", "crit"],
)
def test_extra_header_parameter_is_rejected_even_with_a_valid_signature(
    key: SigningKey, service: TokenService, name: str, value: Any
) -> None:
    if value == "public-jwk":
        value = key.public_jwk
    token = raw_sign(key.private_key, our_header(key, **{name: value}), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_embedded_jwk_of_an_attacker_key_is_rejected(service: TokenService) -> None:
    attacker = SigningKey.generate()
    header = our_header(attacker, jwk=attacker.public_jwk)
    token = raw_sign(attacker.private_key, header, valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_jku_pointing_at_an_attacker_jwks_is_rejected(service: TokenService) -> None:
    attacker = SigningKey.generate()
    header = our_header(attacker, jku="https://attacker.example/.well-known/jwks.json")
    token = raw_sign(attacker.private_key, header, valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


# --- kid ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    ["unknown-key", "", "../../etc/passwd", "/dev/null", "file:///dev/null"],
    ids=["unknown", "empty", "path-traversal", "dev-null", "file-url"],
)
def test_unknown_kid_is_rejected(key: SigningKey, service: TokenService, kid: str) -> None:
    token = raw_sign(key.private_key, our_header(key, kid=kid), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize(
    "kid",
    [1, ["kid"], None, {"kid": "x"}, True],
    ids=["int", "list", "null", "object", "bool"],
)
def test_non_string_kid_is_rejected(key: SigningKey, service: TokenService, kid: Any) -> None:
    token = raw_sign(key.private_key, our_header(key, kid=kid), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_list_holding_our_kid_is_rejected(key: SigningKey, service: TokenService) -> None:
    token = raw_sign(key.private_key, our_header(key, kid=[key.kid]), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_missing_kid_is_rejected(key: SigningKey, service: TokenService) -> None:
    header = {"alg": "EdDSA", "typ": "at+jwt"}
    token = raw_sign(key.private_key, header, valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_token_signed_by_another_key_with_our_kid_is_rejected(
    key: SigningKey, service: TokenService
) -> None:
    other = SigningKey.generate()
    token = raw_sign(other.private_key, our_header(key), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


# --- typ ------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt ", "application/jwt", "", 1])
def test_wrong_typ_is_rejected(key: SigningKey, service: TokenService, typ: Any) -> None:
    token = raw_sign(key.private_key, our_header(key, typ=typ), valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_missing_typ_is_rejected(key: SigningKey, service: TokenService) -> None:
    header = {"alg": "EdDSA", "kid": key.kid}
    token = raw_sign(key.private_key, header, valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+JWT"])
def test_at_jwt_typ_is_accepted_in_any_case_and_with_media_type_prefix(
    key: SigningKey, service: TokenService, typ: str
) -> None:
    token = pyjwt_sign(key, valid_claims(), typ=typ)

    assert service.verify(token, now=NOW).user_id == USER_ID


# --- claims ---------------------------------------------------------------------------


@pytest.mark.parametrize("aud", ["other-api", "", ["other-api"], 1], ids=repr)
def test_wrong_audience_is_rejected(key: SigningKey, service: TokenService, aud: Any) -> None:
    token = pyjwt_sign(key, valid_claims(aud=aud))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize(
    "iss",
    ["https://evil.example", "https://id.example.test.evil", "https://id.example", [ISSUER]],
    ids=repr,
)
def test_wrong_issuer_is_rejected(key: SigningKey, service: TokenService, iss: Any) -> None:
    # Signed by hand: PyJWT refuses to encode a non-string iss.
    token = raw_sign(key.private_key, our_header(key), valid_claims(iss=iss))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize(
    "claim",
    ["iss", "aud", "sub", "sid", "client_id", "iat", "exp", "jti", "acr", "amr", "auth_time"],
)
def test_missing_required_claim_is_rejected(
    key: SigningKey, service: TokenService, claim: str
) -> None:
    claims = valid_claims()
    del claims[claim]
    token = pyjwt_sign(key, claims)

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize("claim", ["sub", "sid", "client_id", "jti"])
def test_null_required_claim_is_rejected(
    key: SigningKey, service: TokenService, claim: str
) -> None:
    token = pyjwt_sign(key, valid_claims(**{claim: None}))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_issued_token_carries_acr_amr_and_auth_time(service: TokenService) -> None:
    assurance = Assurance(aal=2, amr=("pwd", "otp", "mfa"), auth_time=int(NOW.timestamp()) - 60)
    token = service.issue(user_id=USER_ID, session_id=SESSION_ID, now=NOW, assurance=assurance)

    payload = jwt.decode(token, options={"verify_signature": False})
    assert (payload["acr"], payload["amr"], payload["auth_time"]) == (
        "aal2",
        ["pwd", "otp", "mfa"],
        int(NOW.timestamp()) - 60,
    )
    assert service.verify(token, now=NOW).assurance == assurance


@pytest.mark.parametrize(
    "changes",
    [
        {"acr": "aal3"},
        {"acr": 2},
        {"amr": "pwd"},
        {"amr": []},
        {"amr": ["password"]},
        {"amr": [1]},
        {"auth_time": "0"},
        {"auth_time": True},
        {"auth_time": -1},
        {"auth_time": int(NOW.timestamp()) + CLOCK_SKEW_SECONDS + 1},
    ],
)
def test_bad_assurance_claims_are_rejected(
    key: SigningKey, service: TokenService, changes: dict[str, Any]
) -> None:
    token = pyjwt_sign(key, valid_claims(**changes))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_token_is_rejected_at_its_exp(service: TokenService, token: str) -> None:
    with pytest.raises(TokenError):
        service.verify(token, now=NOW + timedelta(seconds=TTL))


def test_token_is_rejected_after_its_exp(service: TokenService, token: str) -> None:
    with pytest.raises(TokenError):
        service.verify(token, now=NOW + timedelta(days=1))


def test_token_is_accepted_one_second_before_exp(service: TokenService, token: str) -> None:
    claims = service.verify(token, now=NOW + timedelta(seconds=TTL - 1))

    assert claims.user_id == USER_ID


def test_iat_in_the_future_beyond_skew_is_rejected(key: SigningKey, service: TokenService) -> None:
    iat = int(NOW.timestamp()) + CLOCK_SKEW_SECONDS + 1
    token = pyjwt_sign(key, valid_claims(iat=iat, exp=iat + TTL))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_iat_in_the_future_within_skew_is_accepted(key: SigningKey, service: TokenService) -> None:
    iat = int(NOW.timestamp()) + CLOCK_SKEW_SECONDS
    token = pyjwt_sign(key, valid_claims(iat=iat, exp=iat + TTL))

    assert service.verify(token, now=NOW).issued_at == iat


def test_nbf_in_the_future_beyond_skew_is_rejected(key: SigningKey, service: TokenService) -> None:
    nbf = int(NOW.timestamp()) + CLOCK_SKEW_SECONDS + 1
    token = pyjwt_sign(key, valid_claims(nbf=nbf))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_nbf_in_the_past_is_accepted(key: SigningKey, service: TokenService) -> None:
    token = pyjwt_sign(key, valid_claims(nbf=int(NOW.timestamp()) - 1))

    assert service.verify(token, now=NOW).user_id == USER_ID


def _exp() -> int:
    return int(NOW.timestamp()) + TTL


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", str(_exp())),
        ("exp", _exp() + 0.5),
        ("exp", float(_exp())),
        ("exp", True),
        ("exp", [_exp()]),
        ("iat", str(int(NOW.timestamp()))),
        ("iat", float(int(NOW.timestamp()))),
        ("iat", False),
        ("nbf", str(int(NOW.timestamp()))),
        ("nbf", None),
        ("nbf", False),
        ("nbf", True),
    ],
    ids=[
        "exp-string",
        "exp-fraction",
        "exp-float",
        "exp-bool",
        "exp-list",
        "iat-string",
        "iat-float",
        "iat-bool",
        "nbf-string",
        "nbf-null",
        "nbf-false",
        "nbf-true",
    ],
)
def test_non_integer_time_claim_is_rejected(
    key: SigningKey, service: TokenService, claim: str, value: Any
) -> None:
    token = pyjwt_sign(key, valid_claims(**{claim: value}))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_lifetime_longer_than_configured_is_rejected(
    key: SigningKey, service: TokenService
) -> None:
    iat = int(NOW.timestamp())
    token = pyjwt_sign(key, valid_claims(exp=iat + TTL + CLOCK_SKEW_SECONDS + 1))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_lifetime_within_skew_of_configured_is_accepted(
    key: SigningKey, service: TokenService
) -> None:
    iat = int(NOW.timestamp())
    token = pyjwt_sign(key, valid_claims(exp=iat + TTL + CLOCK_SKEW_SECONDS))

    assert service.verify(token, now=NOW).expires_at == iat + TTL + CLOCK_SKEW_SECONDS


def test_iat_far_in_the_past_with_unexpired_exp_is_rejected(
    key: SigningKey, service: TokenService
) -> None:
    token = pyjwt_sign(key, valid_claims(iat=0))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", "admin"),
        ("sub", ""),
        ("sub", "6f1c2b9e-3a4d-4e5f-8a9b"),
        ("sub", 42),
        ("sid", "not-a-session"),
        ("sid", "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2dff"),
        ("sid", 42),
        ("sid", {"id": str(SESSION_ID)}),
    ],
    ids=repr,
)
def test_non_uuid_subject_or_session_is_rejected(
    key: SigningKey, service: TokenService, claim: str, value: Any
) -> None:
    token = pyjwt_sign(key, valid_claims(**{claim: value}))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_sid_that_is_a_json_number_is_rejected(key: SigningKey, service: TokenService) -> None:
    # 32 decimal digits are also 32 hex digits: str() of this number parses as a UUID.
    token = pyjwt_sign(key, valid_claims(sid=12345678123456781234567812345678))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize("jti", [42, ["a"], True], ids=repr)
def test_non_string_jti_is_rejected(key: SigningKey, service: TokenService, jti: Any) -> None:
    token = pyjwt_sign(key, valid_claims(jti=jti))

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


# --- tampering and malformed tokens ----------------------------------------------------


def test_payload_with_changed_subject_and_old_signature_is_rejected(
    service: TokenService, token: str
) -> None:
    header, _, signature = segments(token)
    forged = f"{header}.{b64json(valid_claims(sub=str(uuid.uuid4())))}.{signature}"

    with pytest.raises(TokenError):
        service.verify(forged, now=NOW)


def test_payload_with_one_flipped_character_is_rejected(service: TokenService, token: str) -> None:
    header, payload, signature = segments(token)
    i = len(payload) // 2
    flipped = payload[:i] + ("A" if payload[i] != "A" else "B") + payload[i + 1 :]

    with pytest.raises(TokenError):
        service.verify(f"{header}.{flipped}.{signature}", now=NOW)


def test_signature_with_one_flipped_character_is_rejected(
    service: TokenService, token: str
) -> None:
    header, payload, signature = segments(token)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    with pytest.raises(TokenError):
        service.verify(f"{header}.{payload}.{flipped}", now=NOW)


def test_token_with_the_signature_stripped_to_a_trailing_dot_is_rejected(
    service: TokenService, token: str
) -> None:
    header, payload, _ = segments(token)

    with pytest.raises(TokenError):
        service.verify(f"{header}.{payload}.", now=NOW)


def test_token_of_two_segments_is_rejected(service: TokenService, token: str) -> None:
    header, payload, _ = segments(token)

    with pytest.raises(TokenError):
        service.verify(f"{header}.{payload}", now=NOW)


def test_token_of_four_segments_is_rejected(service: TokenService, token: str) -> None:
    with pytest.raises(TokenError):
        service.verify(f"{token}.{segments(token)[2]}", now=NOW)


def test_token_with_a_trailing_dot_is_rejected(service: TokenService, token: str) -> None:
    with pytest.raises(TokenError):
        service.verify(f"{token}.", now=NOW)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
@pytest.mark.parametrize(
    "corrupt",
    [
        lambda s: "!!!!",
        lambda s: s[:8] + "*" + s[8:],
        lambda s: s + "=",
        lambda s: s + "A",
        lambda s: s + "%3D",
    ],
    ids=["junk", "inserted-star", "padding", "extra-char", "percent-encoded"],
)
def test_bad_base64_in_a_segment_is_rejected(
    service: TokenService, token: str, index: int, corrupt: Callable[[str], str]
) -> None:
    parts = segments(token)
    parts[index] = corrupt(parts[index])

    with pytest.raises(TokenError):
        service.verify(".".join(parts), now=NOW)


def test_non_json_header_is_rejected(service: TokenService, token: str) -> None:
    _, payload, signature = segments(token)
    header = b64url(b"alg=EdDSA;typ=at+jwt")

    with pytest.raises(TokenError):
        service.verify(f"{header}.{payload}.{signature}", now=NOW)


def test_header_that_is_a_json_list_is_rejected(key: SigningKey, service: TokenService) -> None:
    token = raw_sign(key.private_key, ["EdDSA", "at+jwt", key.kid], valid_claims())

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_payload_that_is_a_json_list_is_rejected(key: SigningKey, service: TokenService) -> None:
    token = raw_sign(key.private_key, our_header(key), [valid_claims()])

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def _validly_signed(key: SigningKey, header_json: str) -> str:
    signing_input = f"{b64url(header_json.encode())}.{b64json(valid_claims())}"
    return f"{signing_input}.{b64url(key.private_key.sign(signing_input.encode()))}"


def test_validly_signed_header_padded_with_whitespace_verifies_when_small(
    key: SigningKey, service: TokenService
) -> None:
    """Control for the 1 MB header below: whitespace alone does not invalidate a header."""
    header = '{"alg":"EdDSA",   "typ":"at+jwt",   "kid":"' + key.kid + '"}'

    assert service.verify(_validly_signed(key, header), now=NOW).user_id == USER_ID


def test_one_megabyte_header_is_rejected(key: SigningKey, service: TokenService) -> None:
    # Only alg, typ and kid, validly signed: the size alone must make it fail.
    header = '{"alg":"EdDSA",' + " " * 1_000_000 + '"typ":"at+jwt","kid":"' + key.kid + '"}'
    token = _validly_signed(key, header)
    assert len(token) > 1_000_000

    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


@pytest.mark.parametrize("token", ["", ".", "..", "...", "a.b.c", " "], ids=repr)
def test_empty_or_trivial_string_is_rejected(service: TokenService, token: str) -> None:
    with pytest.raises(TokenError):
        service.verify(token, now=NOW)


def test_token_with_surrounding_whitespace_is_rejected(service: TokenService, token: str) -> None:
    with pytest.raises(TokenError):
        service.verify(f" {token}", now=NOW)


# --- signing keys on disk and in settings ----------------------------------------------


def _file_settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "var" / "nested",
    )


def test_signing_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    settings = _file_settings(tmp_path)

    load_or_create_signing_key(settings)

    assert stat.S_IMODE(settings.signing_key_path.stat().st_mode) == 0o600


def test_signing_key_file_holds_the_returned_key(tmp_path: Path) -> None:
    settings = _file_settings(tmp_path)

    key = load_or_create_signing_key(settings)

    assert SigningKey.from_pem(settings.signing_key_path.read_bytes()).kid == key.kid


def test_signing_key_file_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    settings = _file_settings(tmp_path)

    load_or_create_signing_key(settings)

    assert sorted(p.name for p in settings.signing_key_path.parent.iterdir()) == ["signing_key.pem"]


def test_second_load_returns_the_same_key(tmp_path: Path) -> None:
    settings = _file_settings(tmp_path)

    first = load_or_create_signing_key(settings)
    second = load_or_create_signing_key(settings)

    assert second.kid == first.kid


def test_existing_signing_key_file_is_used_not_replaced(tmp_path: Path) -> None:
    existing = SigningKey.generate()
    path = tmp_path / "keys" / "atrium.pem"
    path.parent.mkdir()
    path.write_bytes(existing.private_pem())
    settings = make_settings(signing_key_file=path)

    key = load_or_create_signing_key(settings)

    assert key.kid == existing.kid
    assert path.read_bytes() == existing.private_pem()


def test_inline_signing_key_is_used(tmp_path: Path) -> None:
    inline = SigningKey.generate()
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "var",
        auth=AuthSettings(signing_key=inline.private_pem().decode()),
    )

    key = load_or_create_signing_key(settings)

    assert key.kid == inline.kid


def test_inline_signing_key_creates_no_key_file(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path / "var",
        auth=AuthSettings(signing_key=SigningKey.generate().private_pem().decode()),
    )

    load_or_create_signing_key(settings)

    assert not settings.signing_key_path.exists()


def test_inline_signing_key_takes_precedence_over_the_key_file(tmp_path: Path) -> None:
    inline, on_disk = SigningKey.generate(), SigningKey.generate()
    path = tmp_path / "signing_key.pem"
    path.write_bytes(on_disk.private_pem())
    settings = make_settings(signing_key=inline.private_pem().decode(), signing_key_file=path)

    assert load_or_create_signing_key(settings).kid == inline.kid


def test_signing_key_is_read_from_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inline = SigningKey.generate()
    monkeypatch.setenv("ATRIUM_AUTH__SIGNING_KEY", inline.private_pem().decode())
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path / "var")

    assert load_or_create_signing_key(settings).kid == inline.kid


def _ec_p256_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def test_inline_non_ed25519_key_raises_value_error() -> None:
    settings = make_settings(signing_key=_ec_p256_pem())

    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_signing_key(settings)


def test_non_ed25519_key_file_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    path.write_text(_ec_p256_pem())

    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_signing_key(make_settings(signing_key_file=path))


def test_inline_key_that_is_not_pem_raises_value_error() -> None:
    settings = make_settings(signing_key="not a pem key")

    with pytest.raises(ValueError):  # noqa: PT011 - the message comes from cryptography
        load_or_create_signing_key(settings)
