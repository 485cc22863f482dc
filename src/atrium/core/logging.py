"""structlog configuration: JSON lines in production, a readable console in development."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from atrium.config import Settings
from atrium.core.redaction import scrub


def _redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    cleaned: dict[str, Any] = scrub(dict(event_dict))
    return cleaned


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library through one renderer at ``log_level``."""
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.typing.Processor
    if settings.effective_log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _redact,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Standard-library loggers (uvicorn, SQLAlchemy, alembic) go through the same
    # processors and renderer, so a JSON log stream has only JSON lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic announces each of its plugins at import: noise before every start-up.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(level, logging.WARNING))
    # httpx logs every request it sends at INFO with the whole URL, query string included
    # (a provider's presigned picture URL carries its signature there). Atrium logs the
    # outcome of its outbound calls itself (webhook attempts, provider failures).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
