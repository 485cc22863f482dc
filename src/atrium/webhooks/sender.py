"""One HTTP attempt of a webhook delivery: SSRF-checked, pinned, bounded in time and size.

:class:`WebhookClient` is what a worker keeps for its life: one connection pool per
*(scheme, host name, port, pinned address)*, so an attempt reuses a kept-alive connection
(and one TLS context) instead of opening a fresh one. Pinning stays per attempt: the host
is resolved and every answer checked before each attempt (:func:`atrium.core.ssrf.pin`)
and the attempt goes through the pool of the address it was checked against — a name
whose answer changed (DNS rebinding) is checked again and, when allowed, gets a pool of
its own; a connection is never shared by two host names (its TLS session and ``Host``
belong to one), nor reaches an address that the current attempt did not check.

:meth:`WebhookClient.post` (and the one-shot :func:`post`) never raise for the receiver's
behaviour: a refused URL, a time-out, a connection error, a redirect or a non-2xx status
are all an :class:`AttemptResult` with ``ok`` False.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx

from atrium.config import WebhookSettings
from atrium.core.outbound import tls_context
from atrium.core.ssrf import PinnedTransport, Target, UrlRefused, parse_url, pin

EXCERPT_CHARS = 1000
USER_AGENT = "Atrium-Webhooks/1"
# Pools kept at once (least recently used closed first) and idle connections kept per pool.
MAX_POOLS = 256
KEEPALIVE_PER_POOL = 10
KEEPALIVE_SECONDS = 30.0

PoolKey = tuple[str, str, int, str]


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt gave: ``status_code`` (None without an answer), ``latency_ms``,
    the start of the answer's body (``excerpt``) and ``error`` (why it failed)."""

    ok: bool
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None


@dataclass
class _Pool:
    client: httpx.AsyncClient
    in_use: int = 0
    evicted: bool = False


class WebhookClient:
    """Pooled HTTP for webhook attempts (see the module docstring); close with
    :meth:`aclose`. Safe for concurrent attempts from one event loop."""

    def __init__(self, settings: WebhookSettings, *, max_pools: int = MAX_POOLS) -> None:
        self.settings = settings
        self.max_pools = max_pools
        self._pools: OrderedDict[PoolKey, _Pool] = OrderedDict()
        self._closing: list[httpx.AsyncClient] = []
        self._timeout = httpx.Timeout(
            settings.read_timeout_seconds,
            connect=settings.connect_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )

    @property
    def pools(self) -> int:
        """Pools open now (one per scheme, host, port and pinned address)."""
        return len(self._pools)

    def _pool(self, target: Target, address: str) -> _Pool:
        key: PoolKey = (target.scheme, target.host, target.port, address)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        transport = PinnedTransport(
            address,
            retries=0,
            verify=tls_context(),
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=KEEPALIVE_PER_POOL,
                keepalive_expiry=KEEPALIVE_SECONDS,
            ),
        )
        pool = _Pool(
            httpx.AsyncClient(
                transport=transport,
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
            )
        )
        self._pools[key] = pool
        while len(self._pools) > self.max_pools:
            _, old = self._pools.popitem(last=False)
            old.evicted = True
            if old.in_use == 0:
                self._closing.append(old.client)
        return pool

    async def _close_evicted(self) -> None:
        closing, self._closing = self._closing, []
        for client in closing:
            await client.aclose()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        """POST ``body`` (JSON) to ``url`` with ``headers``; success is a 2xx answer.

        The host is resolved and checked for this attempt and the connection pinned to
        the checked address (:mod:`atrium.core.ssrf`); redirects are not followed;
        ``connect_timeout_seconds`` and ``read_timeout_seconds`` bound the attempt; at
        most ``max_response_bytes`` of the answer are read (the rest of a longer answer
        is dropped with its connection).
        """
        settings = self.settings
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            target = parse_url(url, settings)
            address = await pin(target, settings)
        except UrlRefused as exc:
            return AttemptResult(False, None, elapsed(), None, f"refused: {exc.detail}")
        request_headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **headers,
        }
        pool = self._pool(target, address)
        pool.in_use += 1
        try:
            async with pool.client.stream(
                "POST", url, content=body, headers=request_headers
            ) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_raw():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= settings.max_response_bytes:
                        break
                raw = b"".join(chunks)[: settings.max_response_bytes]
                status = resp.status_code
        except httpx.TimeoutException as exc:
            return AttemptResult(False, None, elapsed(), None, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return AttemptResult(False, None, elapsed(), None, f"{type(exc).__name__}: {exc}")
        finally:
            pool.in_use -= 1
            if pool.evicted and pool.in_use == 0:
                self._closing.append(pool.client)
            await self._close_evicted()
        excerpt = raw[:EXCERPT_CHARS].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
        ok = 200 <= status < 300
        error = None
        if 300 <= status < 400:
            error = f"redirect to {resp.headers.get('location', '?')[:200]} not followed"
        elif not ok:
            error = f"HTTP {status}"
        return AttemptResult(ok, status, elapsed(), excerpt or None, error)

    async def aclose(self) -> None:
        """Close every pool (and its connections)."""
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            self._closing.append(pool.client)
        await self._close_evicted()


async def post(
    url: str, body: bytes, headers: dict[str, str], settings: WebhookSettings
) -> AttemptResult:
    """One attempt on a client of its own (:meth:`WebhookClient.post`, then closed): for a
    single send; workers keep one :class:`WebhookClient`."""
    client = WebhookClient(settings, max_pools=1)
    try:
        return await client.post(url, body, headers)
    finally:
        await client.aclose()
