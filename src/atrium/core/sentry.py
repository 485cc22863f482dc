"""Sentry error reporting (sentry-sdk), enabled by ``ATRIUM_SENTRY_DSN``.

PII is scrubbed before anything leaves the process: no user data and no stack-frame
variables are collected (``data_collection``), and a
``before_send`` hook removes request bodies, cookies, the ``Authorization`` header and any
value under a key that names a secret (OWASP Logging Cheat Sheet: never log credentials).
"""

from __future__ import annotations

from typing import Any

from atrium import __version__
from atrium.config import Settings
from atrium.core.redaction import scrub


def before_send(event: Any, _hint: Any) -> Any:
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
    event_dict: dict[str, Any] = scrub(event)
    return event_dict


def init_sentry(settings: Settings) -> bool:
    """Initialise sentry-sdk when a DSN is configured; True when enabled."""
    if settings.sentry_dsn is None:
        return False
    # Imported only when enabled: sentry-sdk costs ~70 ms of every process start.
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment.value,
        release=f"atrium@{__version__}",
        # No user data, no local variables of stack frames (they can hold the raw ASGI
        # headers, tokens included, which no key-based scrubbing can see).
        data_collection={"user_info": False, "stack_frame_variables": False},
        sample_rate=settings.sentry_sample_rate,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=before_send,
    )
    return True
