"""Outbound HTTP: the one TLS context of the process.

Every ``httpx`` client Atrium opens towards another service (identity providers, GitHub's
API, profile pictures, webhook endpoints, the drand beacon) verifies certificates with
this context. httpx builds a new context for each client it creates unless it is given
one, and building one loads the whole CA bundle: ~18 ms of CPU on a 2-core machine, more
than the rest of a social login's three provider calls together. The context is built on
first use and shared (an ``ssl.SSLContext`` may wrap any number of connections, from any
thread or event loop).

The trust anchors are httpx's defaults, read when the context is built: the file of
``SSL_CERT_FILE`` or the directory of ``SSL_CERT_DIR`` when set, otherwise certifi's
bundle (``httpx.create_ssl_context``). A change to them takes effect at the next start.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS client context: certificate and host-name checks on, trust
    anchors as httpx's defaults (module docstring). Built once; never mutate it."""
    return httpx.create_ssl_context()


def http_client(timeout: float | httpx.Timeout, **options: object) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with ``timeout`` (seconds, or an ``httpx.Timeout``) that
    verifies servers with :func:`tls_context`; ``options`` go to the client as they are
    (``follow_redirects=``, ``headers=``...). A client over a transport of its own does
    not use the client's ``verify``: give that transport ``verify=tls_context()``
    instead. Close it (``async with``)."""
    return httpx.AsyncClient(timeout=timeout, verify=tls_context(), **options)  # type: ignore[arg-type]
