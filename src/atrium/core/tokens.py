"""Access tokens: signing keys, issuing and strict verification.

Access tokens are JWTs in the RFC 9068 profile (header ``typ: at+jwt``), signed with
Ed25519 (JWS ``alg: EdDSA``, RFC 8037) and identified by ``kid``, the key's RFC 7638
thumbprint. Verification pins the one algorithm, the issuer and the audience, requires
every claim and refuses any header parameter beyond ``alg``, ``typ`` and ``kid`` (so an
embedded ``jwk``/``jku``/``x5u`` can never choose the key; RFC 8725 §3.1, §3.10).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cachetools import LRUCache
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from atrium.config import Environment, Settings, StartupError, env_name
from atrium.core.assurance import Assurance as Assurance

ALGORITHM = "EdDSA"
TOKEN_TYPE = "at+jwt"  # noqa: S105  # nosec B105
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
_ALLOWED_HEADER = {"alg", "typ", "kid"}
_REQUIRED_CLAIMS = (
    "iss",
    "aud",
    "sub",
    "sid",
    "client_id",
    "iat",
    "exp",
    "jti",
    "acr",
    "amr",
    "auth_time",
)
# Atrium's own tokens are about 400 characters; anything far larger is refused unparsed.
MAX_TOKEN_LENGTH = 4096
CLOCK_SKEW_SECONDS = 30


class TokenError(Exception):
    """The token is not a valid Atrium access token; the message says why (for logs)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class VerificationKey:
    """An Ed25519 public key with its ``kid`` (RFC 7638 thumbprint) and public JWK."""

    kid: str
    public_key: Ed25519PublicKey
    public_jwk: dict[str, str]

    @staticmethod
    def _identify(public_key: Ed25519PublicKey) -> tuple[str, dict[str, str]]:
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = _b64url(raw)
        # RFC 7638 §3.2: members in lexicographic order, no white space.
        thumbprint_input = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True
        )
        kid = _b64url(hashlib.sha256(thumbprint_input.encode()).digest())
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}
        return kid, jwk

    @classmethod
    def from_pem(cls, pem: bytes) -> VerificationKey:
        """A key from an Ed25519 PEM: a public key (SubjectPublicKeyInfo) or a private key
        (PKCS#8), of which only the public half is kept.

        Raises:
            ValueError: the PEM is not an Ed25519 public or private key.
        """
        key: object
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(pem, password=None).public_key()
            except (ValueError, TypeError) as exc:
                raise ValueError("not an Ed25519 PEM public or private key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 PEM public or private key")
        kid, jwk = cls._identify(key)
        return cls(kid=kid, public_key=key, public_jwk=jwk)


@dataclass(frozen=True)
class SigningKey(VerificationKey):
    """An Ed25519 key pair with its ``kid`` and public JWK."""

    private_key: Ed25519PrivateKey

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        public_key = private_key.public_key()
        kid, jwk = cls._identify(public_key)
        return cls(kid=kid, public_key=public_key, public_jwk=jwk, private_key=private_key)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key (PEM, PKCS#8)")
        return cls.from_private_key(key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private_key(Ed25519PrivateKey.generate())

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def load_or_create_signing_key(settings: Settings) -> SigningKey:
    """The signing key from ``ATRIUM_AUTH__SIGNING_KEY``, or from its file.

    When the file does not exist it is created (mode 0600) atomically: several workers
    starting at once all end up with the same key, the first one written. Not in
    production: there every node must sign with the one shared key, so a configured file
    that is missing is an error, never replaced by a key of this node's own.

    Raises:
        ValueError: the configured key is not an Ed25519 PEM private key.
        StartupError: production, and the key file does not exist.
    """
    if settings.auth.signing_key is not None:
        try:
            return SigningKey.from_pem(settings.auth.signing_key.get_secret_value().encode())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{env_name('auth', 'signing_key')}: {exc}") from exc
    path = settings.signing_key_path
    if not path.exists():
        if settings.environment is Environment.production:
            raise StartupError(
                f"{env_name('auth', 'signing_key_file')}={str(path)!r} does not exist: give "
                "the path of the deployment's shared Ed25519 key, or create it once for all "
                f"nodes: openssl genpkey -algorithm ed25519 -out {path}"
            )
        _create_key_file(path)
    try:
        return SigningKey.from_pem(path.read_bytes())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{env_name('auth', 'signing_key_file')}: {path}: {exc}") from exc


def load_verification_keys(settings: Settings) -> list[VerificationKey]:
    """The extra keys that access tokens may be signed with, besides the signing key:
    ``auth.verification_keys`` (PEM text) then ``auth.verification_key_files``.

    They let a key rotation overlap (docs/operations.md): publish the next key before any
    node signs with it, and keep the previous one until its last token has expired.

    Raises:
        ValueError: a key is not an Ed25519 PEM public or private key (the message names
            the file or the position), or a file cannot be read.
    """
    keys: list[VerificationKey] = []
    for i, pem in enumerate(settings.auth.verification_keys):
        try:
            keys.append(VerificationKey.from_pem(pem.get_secret_value().encode()))
        except ValueError as exc:
            raise ValueError(f"{env_name('auth', 'verification_keys')}[{i}]: {exc}") from exc
    for path in settings.auth.verification_key_files:
        try:
            keys.append(VerificationKey.from_pem(path.read_bytes()))
        except (OSError, ValueError) as exc:
            variable = env_name("auth", "verification_key_files")
            raise ValueError(f"{variable}: {path}: {exc}") from exc
    return keys


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(SigningKey.generate().private_pem())
        with contextlib.suppress(FileExistsError):  # another process won the race
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class AccessTokenClaims:
    """The verified claims of an access token."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    jti: str
    issued_at: int
    expires_at: int
    assurance: Assurance
    not_before: int = 0
    mfa_enrol_by: int | None = None


class TokenService:
    """Issues and verifies access tokens with one signing key and a set of verification keys."""

    def __init__(
        self,
        settings: Settings,
        signing_key: SigningKey,
        verification_keys: list[VerificationKey] | None = None,
        *,
        verified_cache_size: int = 10_000,
    ) -> None:
        self._issuer = settings.auth.issuer
        self._audience = settings.auth.audience
        self.ttl_seconds = settings.auth.access_token_ttl_seconds
        self._signing_key = signing_key
        # The signing key first; a verification key equal to it is the same kid, kept once.
        self._keys: dict[str, VerificationKey] = {signing_key.kid: signing_key}
        for extra in verification_keys or []:
            self._keys.setdefault(extra.kid, extra)
        # Verified tokens by their exact text: a client sends the same token on every call
        # until it expires, and the signature of a given byte string cannot change. Time is
        # still checked on every call; revocation is checked by the caller.
        self._verified: LRUCache[str, AccessTokenClaims] = LRUCache(maxsize=verified_cache_size)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JWK Set (RFC 7517 §5): the signing key first, then the
        verification keys."""
        return {"keys": [k.public_jwk for k in self._keys.values()]}

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        now: datetime,
        assurance: Assurance,
        mfa_enrol_by: int | None = None,
    ) -> str:
        """A signed access token for ``user_id`` in ``session_id``, valid ``ttl_seconds``,
        carrying the session's ``assurance`` as ``acr``, ``amr`` and ``auth_time``, and
        ``mfa_enrol_by`` (seconds since the epoch) when a role of the account requires MFA
        and it has no factor: past that time the token reaches only MFA enrolment."""
        iat = int(now.timestamp())
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "client_id": self._audience,
            "iat": iat,
            "exp": iat + self.ttl_seconds,
            "jti": secrets.token_urlsafe(16),
            "acr": assurance.acr,
            "amr": list(assurance.amr),
            "auth_time": assurance.auth_time,
        }
        if mfa_enrol_by is not None:
            payload["mfa_enrol_by"] = mfa_enrol_by
        return jwt.encode(
            payload,
            self._signing_key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self._signing_key.kid, "typ": TOKEN_TYPE},
        )

    def verify(self, token: str, *, now: datetime) -> AccessTokenClaims:
        """Verify ``token`` and return its claims.

        Raises:
            TokenError: for anything but a well-formed, unexpired token signed by one of
                our keys with the expected algorithm, type, issuer and audience.
        """
        cached = self._verified.get(token)
        if cached is not None:
            self._check_time(cached.issued_at, cached.expires_at, cached.not_before, now)
            return cached
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError("malformed header") from exc
        if not isinstance(header, dict) or set(header) - _ALLOWED_HEADER:
            raise TokenError("unexpected header parameters")
        if header.get("alg") != ALGORITHM:
            raise TokenError("unexpected algorithm")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
            raise TokenError("unexpected token type")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("unknown key id")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # Time is checked below against the injectable clock.
                options={
                    "require": list(_REQUIRED_CLAIMS),
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError(f"verification failed: {type(exc).__name__}") from exc
        verified = self._check_claims(claims, now)
        self._verified[token] = verified
        return verified

    @staticmethod
    def _check_time(iat: int, exp: int, nbf: int, now: datetime) -> None:
        ts = now.timestamp()
        if exp <= ts:
            raise TokenError("expired")
        if iat > ts + CLOCK_SKEW_SECONDS or nbf > ts + CLOCK_SKEW_SECONDS:
            raise TokenError("not yet valid")

    def _check_claims(self, claims: dict[str, Any], now: datetime) -> AccessTokenClaims:
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
        if not (_is_int(exp) and _is_int(iat) and _is_int(nbf)):
            raise TokenError("non-integer time claim")
        assert isinstance(exp, int)
        assert isinstance(iat, int)
        assert isinstance(nbf, int)
        self._check_time(iat, exp, nbf, now)
        if exp - iat > self.ttl_seconds + CLOCK_SKEW_SECONDS:
            raise TokenError("lifetime longer than configured")
        jti = claims.get("jti")
        if not isinstance(jti, str):
            raise TokenError("bad jti")
        sub, sid = claims.get("sub"), claims.get("sid")
        if not isinstance(sub, str) or not isinstance(sid, str):
            raise TokenError("bad subject or session id")
        try:
            user_id, session_id = uuid.UUID(sub), uuid.UUID(sid)
        except ValueError as exc:
            raise TokenError("bad subject or session id") from exc
        # Only the canonical form Atrium issues (no urn:uuid:, braces or upper case).
        if str(user_id) != sub or str(session_id) != sid:
            raise TokenError("bad subject or session id")
        return AccessTokenClaims(
            user_id=user_id,
            session_id=session_id,
            jti=jti,
            issued_at=iat,
            expires_at=exp,
            assurance=_assurance(claims, iat),
            not_before=nbf,
            mfa_enrol_by=_enrol_by(claims),
        )


def _assurance(claims: dict[str, Any], iat: int) -> Assurance:
    try:
        return Assurance.from_claims(claims, latest=iat + CLOCK_SKEW_SECONDS)
    except ValueError as exc:
        raise TokenError(str(exc)) from exc


def _enrol_by(claims: dict[str, Any]) -> int | None:
    value = claims.get("mfa_enrol_by")
    if value is None:
        return None
    if not _is_int(value):
        raise TokenError("bad mfa_enrol_by")
    assert isinstance(value, int)
    return value
