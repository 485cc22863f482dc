"""The edge of the application: one pure ASGI middleware for what every request needs.

One middleware rather than several (and no ``BaseHTTPMiddleware``, which costs a task per
request): it resolves the client address behind trusted proxies, assigns the request id,
adds the security headers, and logs and counts the request once it is answered.
"""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atrium.config import HttpSettings
from atrium.core import metrics
from atrium.core.activity import ActivityBuffer

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# RFC 9110 §9.1: a method is a token (tchar). Longer than any registered method (the
# longest in the IANA registry, VERSION-CONTROL and BASELINE-CONTROL, have 16 characters)
# plus room for extensions is refused too.
_METHOD_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")
# Methods that get their own metric label; any other name counts as ``other``, so that a
# client cannot create series by inventing methods.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def method_label(method: str) -> str:
    """The metric and log label of a request method: itself if standard, else ``other``."""
    return method if method in KNOWN_METHODS else "other"


_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)', re.I)
_FORWARDED_PROTO = re.compile(r'proto="?(https?)', re.I)

access_log = structlog.get_logger("atrium.access")

# The current request's ASGI scope, for code far from the route that needs who is asking
# (the audit trail: client address, user agent, request id). None outside a request.
current_scope: ContextVar[Scope | None] = ContextVar("atrium_request_scope", default=None)

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

_BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"permissions-policy",
        b"accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        b"microphone=(), payment=(), usb=(), interest-cohort=()",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
]


_INTERNAL_ERROR = (
    b'{"type":"about:blank","title":"Internal server error","status":500,"code":"internal_error"}'
)


def _route_template(scope: Scope) -> str:
    """The matched route's template with the prefix it was included under
    (``/api/v1/users/me/sessions/{session_id}``), or ``unmatched``."""
    route = scope.get("route")
    route_path: str | None = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not route_path:
        return "unmatched"
    parts = scope.get("path", "").split("/")
    depth = len(parts) - route_path.count("/")
    return "/".join(parts[:depth]) + route_path if depth > 0 else route_path


_BAD_METHOD = (
    b'{"type":"about:blank","title":"Bad request","status":400,'
    b'"detail":"The request method is not a valid HTTP method name.","code":"bad_method"}'
)

_NUL_IN_INPUT = (
    b'{"type":"about:blank","title":"Invalid request","status":422,'
    b'"detail":"The request contains a NUL character.","code":"validation_error",'
    b'"errors":[{"loc":["request"],"type":"nul_character",'
    b'"msg":"NUL characters are not allowed."}]}'
)
# A JSON string can carry NUL only as the escape \u0000; it is one when preceded by an even
# number of backslashes (otherwise the backslash itself is escaped and the text is literal).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# The trailing backslash run of a chunk (with a partial \u000), carried into the next one.
_JSON_TAIL = re.compile(rb"\\+(?:u0{0,3})?$")
_FORM_NUL = re.compile(rb"%00|\x00")


def has_nul(scope: Scope) -> bool:
    """NUL in the path or the query string (raw, or percent-encoded as ``%00``)."""
    if "\x00" in scope.get("path", ""):
        return True
    query: bytes = scope.get("query_string", b"")
    return b"\x00" in query or b"%00" in query


def _body_kind(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media == b"application/json" or media.endswith(b"+json"):
                return "json"
            if media == b"application/x-www-form-urlencoded":
                return "form"
            return None
    return None


_PAYLOAD_TOO_LARGE = (
    b'{"type":"about:blank","title":"Payload too large","status":413,'
    b'"detail":"The request body is too large.","code":"payload_too_large"}'
)


def _strip_port(node: str) -> str:
    """``192.0.2.43:4711`` -> ``192.0.2.43`` (RFC 7239 §6: IPv6 comes bracketed, and the
    brackets are already gone here, so a bare IPv6 address has several colons)."""
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


class TrustedProxies:
    """Addresses (or networks) whose forwarding headers are believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, host: str | None) -> bool:
        if not host or not self._networks:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self._networks)

    def client_from_chain(self, peer: str, hops: list[str]) -> str:
        """The first address, from the right, that is not a trusted proxy (OWASP advice:
        never take the left-most entry, which the client controls)."""
        current = peer
        for hop in reversed(hops):
            if not self.trusts(current):
                break
            current = hop
        return current


class EdgeMiddleware:
    """Client address, request id, security headers, access log and request metrics.

    - ``X-Forwarded-For``/``X-Forwarded-Proto`` and ``Forwarded`` (RFC 7239) are used only
      when the direct peer is in ``http.trusted_proxies``.
    - ``X-Request-ID`` is accepted from a trusted proxy when well-formed, otherwise
      generated; it is echoed on every response and kept in ``scope["state"]``.
    - Security headers on every response (OWASP Secure Headers); a strict CSP unless the
      route set its own (the docs pages); HSTS when the request came over HTTPS.
    - Each authenticated request (a principal in ``scope["state"]``) is counted in
      ``activity`` (an in-memory buffer: no I/O per request; ``atrium.core.activity``).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: HttpSettings,
        upload_limits: dict[tuple[str, str], int] | None = None,
        activity: ActivityBuffer | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.app = app
        self.activity = activity if activity is not None and activity.enabled else None
        self.now = now
        # (method, path) -> body limit of the upload routes; others get max_body_bytes.
        self.upload_limits = upload_limits or {}
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.access_log_enabled = settings.access_log
        self.max_body = settings.max_body_bytes
        self.hsts = (
            b"strict-transport-security",
            f"max-age={settings.hsts_max_age_seconds}; includeSubDomains".encode(),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        client = scope.get("client")
        peer = client[0] if client else None
        incoming_id = None
        if self.proxies and self.proxies.trusts(peer):
            incoming_id = self._apply_forwarding(scope, peer)
        request_id = (
            incoming_id if incoming_id and _REQUEST_ID_RE.match(incoming_id) else uuid.uuid4().hex
        )
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        extra = [*_BASE_HEADERS, (b"x-request-id", request_id.encode())]
        if scope.get("scheme") == "https":
            extra.append(self.hsts)
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", API_CSP))
                headers.extend(extra)
                limit_state = state.get("ratelimit")
                if limit_state is not None and not any(k == b"ratelimit-limit" for k, _ in headers):
                    headers.extend(
                        (k.lower().encode(), v.encode()) for k, v in limit_state.headers().items()
                    )
                message["headers"] = headers
            await send(message)

        scope_token = current_scope.set(scope)
        try:
            limit = self.upload_limits.get((scope.get("method", ""), scope["path"]), self.max_body)
            if not _METHOD_RE.match(scope.get("method", "")):
                # Refused before routing: a method name is never a label, a log field or
                # a lookup key unless it is a short, valid token.
                await self._send_problem(send_wrapper, 400, _BAD_METHOD)
            elif has_nul(scope):
                # No text column accepts NUL (PostgreSQL refuses it), and no identifier,
                # name or address needs it: refused once, here, for every route.
                await self._send_problem(send_wrapper, 422, _NUL_IN_INPUT)
            elif self._declared_length(scope) > limit:
                await self._send_problem(send_wrapper, 413, _PAYLOAD_TOO_LARGE)
            else:
                await self.app(
                    scope, self._limited(receive, limit, _body_kind(scope)), send_wrapper
                )
        except Exception:
            # Answer the 500 here, inside the edge, so it carries every header too; the
            # exception goes on to the server, which logs it.
            if not started:
                await self._send_problem(send_wrapper, 500, _INTERNAL_ERROR)
            raise
        finally:
            current_scope.reset(scope_token)
            elapsed = time.perf_counter() - start
            template = _route_template(scope)
            method = method_label(scope.get("method", ""))
            metrics.observe_request(method, template, status, elapsed)
            principal = state.get("principal")
            if principal is not None and self.activity is not None and self.now is not None:
                self.activity.seen(
                    principal.user_id,
                    principal.session_id,
                    (scope.get("client") or (None,))[0],
                    self.now(),
                )
            if self.access_log_enabled:
                access_log.info(
                    "request",
                    method=method,
                    route=template,
                    status=status,
                    latency_ms=round(elapsed * 1000, 2),
                    request_id=request_id,
                    user_id=str(principal.user_id) if principal is not None else None,
                    client_ip=(scope.get("client") or (None,))[0],
                )

    @staticmethod
    async def _send_problem(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    @staticmethod
    def _limited(receive: Receive, limit: int, kind: str | None = None) -> Receive:
        """``receive`` that refuses a body growing past ``limit`` bytes while it streams
        (chunked bodies have no Content-Length to check up front), and a JSON or form
        body that carries a NUL character (``\\u0000``, ``%00``), found across chunks."""
        received = 0
        carry = b""

        async def limited_receive() -> Message:
            nonlocal received, carry
            message = await receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    # An HTTPException: FastAPI lets it through its body parsing, and the
                    # error handlers render it as problem+json `payload_too_large`.
                    raise HTTPException(413, "The request body is too large.")  # nosemgrep
                if kind is not None:
                    data = carry + chunk
                    pattern = _JSON_NUL if kind == "json" else _FORM_NUL
                    if pattern.search(data):
                        raise HTTPException(  # nosemgrep
                            422, "The request contains a NUL character."
                        )
                    tail = _JSON_TAIL.search(data) if kind == "json" else None
                    carry = data[tail.start() :] if tail else data[-2:]
            return message

        return limited_receive

    def _apply_forwarding(self, scope: Scope, peer: str | None) -> str | None:
        """Rewrite client and scheme from trusted forwarding headers; the incoming request id."""
        xff = xfp = forwarded = request_id = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                xff = value.decode("latin-1")
            elif name == b"x-forwarded-proto":
                xfp = value.decode("latin-1").strip().lower()
            elif name == b"forwarded":
                forwarded = value.decode("latin-1")
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
        hops: list[str] = []
        if forwarded:
            hops = [_strip_port(m.strip()) for m in _FORWARDED_FOR.findall(forwarded)]
            proto = _FORWARDED_PROTO.findall(forwarded)
            if proto:
                xfp = proto[-1].lower()
        elif xff:
            hops = [h.strip() for h in xff.split(",") if h.strip()]
        if hops and peer is not None:
            client_ip = self.proxies.client_from_chain(peer, hops)
            scope["client"] = (client_ip, 0)
        if xfp in ("http", "https"):
            scope["scheme"] = xfp
        return request_id
