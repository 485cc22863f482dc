"""Server-side request forgery defences of every request Atrium makes to a URL someone
else chose: webhook deliveries, a social provider's profile picture (OWASP SSRF
Prevention Cheat Sheet).

- Only ``http`` and ``https`` URLs, without credentials in them.
- The host is resolved **once** per attempt (:func:`resolve_host`) and every answer must
  be a public address: loopback, private (RFC 1918, RFC 4193), link-local (RFC 3927 —
  which holds the cloud metadata address 169.254.169.254), shared (RFC 6598), reserved,
  multicast and unspecified addresses are refused, unless the caller's policy
  (:class:`NetworkPolicy`: ``webhooks.allow_*``, ``social.avatar_allow_*``) allows them.
  ``localhost`` and ``*.localhost`` names (RFC 6761) count as loopback without being
  resolved.
- The connection then goes to the address that was checked (:class:`PinnedTransport`),
  so a DNS answer that changes between the check and the connection (DNS rebinding)
  cannot redirect it; TLS still verifies the certificate against the URL's host name (SNI).
- Redirects are never followed (a 3xx answer is a failed attempt).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import ClassVar, Protocol
from urllib.parse import urlsplit

import anyio
import httpx

from atrium.errors import AppError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services outside the link-local range (Alibaba, AWS over IPv6).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254")
)


class NetworkPolicy(Protocol):
    """Which non-public destinations a caller may reach (both False in production)."""

    @property
    def allow_loopback(self) -> bool: ...

    @property
    def allow_private_networks(self) -> bool: ...


class UrlRefused(AppError):
    """The URL is not http(s), or names a host Atrium refuses to call (private, loopback,
    link-local or metadata addresses, unless the policy says otherwise)."""

    status: ClassVar[int] = 422
    code: ClassVar[str] = "url_refused"
    title: ClassVar[str] = "URL refused"


@dataclass(frozen=True)
class Target:
    """A checked URL: ``scheme``, ``host`` (a name or an address), ``port``."""

    url: str
    scheme: str
    host: str
    port: int


def parse_url(url: str, settings: NetworkPolicy) -> Target:
    """Check the form of ``url`` (no resolution): http(s), a host, no credentials; a
    literal address or a ``localhost`` name must be allowed by ``settings``.

    Raises:
        UrlRefused: 422, with the reason.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("Only http and https URLs are accepted.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UrlRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("Credentials in the URL are not accepted.")
    target = Target(url, scheme, host, port or (443 if scheme == "https" else 80))
    if host == "localhost" or host.endswith(".localhost"):
        if not (settings.allow_loopback or settings.allow_private_networks):
            raise UrlRefused(f"{host} is a loopback name.")
        return target
    literal = _literal(host)
    if literal is not None:
        check_address(literal, settings)
    return target


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_address(address: IPAddress, settings: NetworkPolicy) -> None:
    """Raises UrlRefused (422) when ``address`` is not one ``settings`` lets Atrium reach."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        if settings.allow_loopback or settings.allow_private_networks:
            return
        raise UrlRefused(f"{address} is a loopback address.")
    if address in METADATA_ADDRESSES or not address.is_global or address.is_multicast:
        if settings.allow_private_networks and not address.is_multicast:
            return
        raise UrlRefused(f"{address} is not a public address.")


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as the connection would).
    Tests replace this function to give changing answers."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def pin(target: Target, settings: NetworkPolicy) -> str:
    """The address to connect to: ``target``'s host resolved once, every answer checked.

    Raises:
        UrlRefused: an answer is refused, or the name does not resolve.
    """
    literal = _literal(target.host)
    if literal is not None:
        check_address(literal, settings)
        return str(literal)
    if target.host == "localhost" or target.host.endswith(".localhost"):
        if not (settings.allow_loopback or settings.allow_private_networks):
            raise UrlRefused(f"{target.host} is a loopback name.")
        return "127.0.0.1"
    try:
        answers = await resolve_host(target.host, target.port)
    except OSError as exc:
        raise UrlRefused(f"{target.host} does not resolve: {exc}.") from None
    if not answers:
        raise UrlRefused(f"{target.host} does not resolve.")
    for answer in answers:
        check_address(ipaddress.ip_address(answer), settings)
    return answers[0]


class PinnedTransport(httpx.AsyncHTTPTransport):
    """Connects to ``address`` whatever the request's host; the ``Host`` header and the
    TLS server name (SNI, certificate check) stay the URL's host."""

    def __init__(self, address: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.address = address

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host != self.address:
            if request.url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host}
            request.url = request.url.copy_with(host=self.address)
        return await super().handle_async_request(request)
