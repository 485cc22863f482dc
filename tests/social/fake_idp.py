"""An in-process fake OpenID provider (and GitHub) on a loopback port, for the edge cases
a real provider will not produce on demand: wrong nonce, issuer or audience, expired
tokens, ``alg: none``, key rotation, a mix-up ``iss``, missing ``email_verified``.

It serves discovery, JWKS, an authorization endpoint that consents at once (302 back with
``code``, ``state`` and ``iss``), a token endpoint that checks the client, the redirect URI
and the PKCE verifier (RFC 7636 S256) and signs ID tokens with joserfc, and GitHub's
``/login/oauth/access_token``, ``/user`` and ``/user/emails``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "atrium-client"
CLIENT_SECRET = "fake-client-secret"  # nosec B105


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Grant:
    redirect_uri: str
    nonce: str | None
    challenge: str
    subject: str


@functools.cache
def _key_pair() -> RSAKey:
    """The RSA key pair the provider starts each test with: generating a 2048-bit pair
    takes ~60 ms of CPU, so once per process (``FakeIdP.rotate`` still makes a new one)."""
    return RSAKey.generate_key(2048)


def _signing_key() -> RSAKey:
    """The process's key pair under a new key id (``kid``), as a provider that rotated
    would publish it: Atrium sees a key it has not fetched yet in every test."""
    native = _key_pair().private_key
    return RSAKey(native, native, parameters={"kid": f"k{time.monotonic_ns()}"})


@dataclass
class FakeIdP:
    """State of the fake; tests change the attributes between steps."""

    issuer: str = ""
    keys: list[RSAKey] = field(default_factory=list)
    published: list[RSAKey] | None = None  # None: publish ``keys``
    subject: str = "fake-sub-1"
    claims: dict[str, Any] = field(default_factory=dict)  # overrides of the ID token claims
    header: dict[str, Any] = field(default_factory=dict)  # overrides of the JWS header
    alg: str = "RS256"
    response_iss: str | bool | None = True  # True: the issuer; None/False: absent
    iss_supported: bool = True
    tamper: str | None = None  # "none" | "hs256"
    github_emails: list[dict[str, Any]] = field(default_factory=list)
    github_user: dict[str, Any] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    jwks_fetches: int = 0
    userinfo_email: str | None = "ada@example.com"
    userinfo_sub: str | None = None  # None: the subject of the grant
    announced_issuer: str | None = None  # None: the real one
    # Profile pictures served at /pictures/<name>: (status, body, headers).
    pictures: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    picture_fetches: int = 0

    def reset(self) -> None:
        self.keys = [_signing_key()]
        self.published = None
        self.subject = "fake-sub-1"
        self.claims = {}
        self.header = {}
        self.alg = "RS256"
        self.response_iss = True
        self.iss_supported = True
        self.tamper = None
        self.github_emails = [{"email": "octo@example.com", "primary": True, "verified": True}]
        self.github_user = {"id": 4242, "login": "octo", "name": "Octo Cat"}
        self.grants = {}
        self.jwks_fetches = 0
        self.userinfo_email = "ada@example.com"
        self.userinfo_sub = None
        self.announced_issuer = None
        self.pictures = {}
        self.picture_fetches = 0

    def rotate(self) -> None:
        """The provider's new key signs; the old one is no longer published."""
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": f"k{time.monotonic_ns()}"})]

    # --- endpoints ---------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.announced_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": self.iss_supported,
            }
        )

    async def jwks(self, request: Request) -> Response:
        self.jwks_fetches += 1
        keys = self.keys if self.published is None else self.published
        return JSONResponse({"keys": [k.as_dict(private=False) for k in keys]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        assert q["client_id"] in (CLIENT_ID, "github-client"), q
        assert q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            q["redirect_uri"], q.get("nonce"), q["code_challenge"], self.subject
        )
        params = {"code": code, "state": q["state"]}
        if q["client_id"] == "github-client":
            pass  # GitHub sends no iss
        elif self.response_iss is True:
            params["iss"] = self.issuer
        elif isinstance(self.response_iss, str):
            params["iss"] = self.response_iss
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    def _grant(self, form: Any) -> Grant | None:
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return None
        verifier = form.get("code_verifier", "")
        if b64(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
            return None
        return grant

    async def token(self, request: Request) -> Response:
        form = await request.form()
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self._grant(form)
        if grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(
            {
                "access_token": "at-" + grant.subject,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant),
            }
        )

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "email": "ada@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
            **self.claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.keys[0]
        if self.tamper == "none":
            header = b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
            return f"{header}.{b64(json.dumps(claims).encode())}."
        if self.tamper == "hs256":
            # The classic confusion: HMAC keyed with the provider's public key (PEM);
            # signed by hand, since joserfc itself refuses to make such a key.
            header = b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
            signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
            mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256)
            return f"{signing_input}.{b64(mac.digest())}"
        header = {"alg": self.alg, "kid": key.kid, **self.header}
        return jwt.encode(header, claims, key, algorithms=[self.alg])

    async def userinfo(self, request: Request) -> Response:
        info = {"sub": self.userinfo_sub or self.subject, "email": self.userinfo_email}
        return JSONResponse({k: v for k, v in info.items() if v is not None})

    async def github_token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("client_id") != "github-client" or form.get("client_secret") != "gh-secret":
            return JSONResponse({"error": "incorrect_client_credentials"})
        grant = self._grant(form)
        if grant is None:
            return JSONResponse({"error": "bad_verification_code"})
        return JSONResponse(
            {"access_token": "gho_test", "token_type": "bearer", "scope": "user:email"}
        )

    async def github_api_user(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer gho_test":
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(self.github_user)

    async def github_api_emails(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer gho_test":
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        return JSONResponse(self.github_emails)

    async def picture(self, request: Request) -> Response:
        self.picture_fetches += 1
        status, body, headers = self.pictures.get(
            request.path_params["name"], (404, b"not found", {})
        )
        return Response(body, status_code=status, headers=headers)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
                Route("/login/oauth/access_token", self.github_token, methods=["POST"]),
                Route("/api/user", self.github_api_user),
                Route("/api/user/emails", self.github_api_emails),
                Route("/pictures/{name}", self.picture),
            ]
        )


class Served:
    """Runs an ASGI app with uvicorn on a free loopback port in a thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "fake provider did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
