"""Templates of applications: each application's template directory, under its name.

``render("raffles/ticket.html", **context)`` renders ``ticket.html`` of the ``raffles``
application with autoescaping (HTML and XML) and strict undefined variables, so a
misspelt variable fails loudly instead of rendering empty.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

_DIRECTORIES: dict[str, Path] = {}
_environment: Environment | None = None


def register_templates(app_name: str, directory: Path) -> None:
    """Serve ``directory``'s templates as ``"<app_name>/<file>"`` (idempotent).

    Raises:
        ValueError: another directory is registered under ``app_name``.
    """
    global _environment
    known = _DIRECTORIES.get(app_name)
    if known is not None and known != directory:
        raise ValueError(f"templates of {app_name!r} are already registered from {known}")
    _DIRECTORIES[app_name] = directory
    _environment = None


class AppTemplateLoader(BaseLoader):
    """Loads ``"<app>/<file>"`` from the directories registered at that moment (so an
    environment built before an application registered its templates still finds them)."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        name, _, rest = template.partition("/")
        directory = _DIRECTORIES.get(name)
        if directory is None or not rest:
            raise TemplateNotFound(template)
        return FileSystemLoader(directory).get_source(environment, rest)


def environment() -> Environment:
    """The Jinja2 environment over every registered template directory."""
    global _environment
    if _environment is None:
        _environment = Environment(
            loader=PrefixLoader({name: FileSystemLoader(d) for name, d in _DIRECTORIES.items()}),
            autoescape=select_autoescape(["html", "xml"]),
            undefined=StrictUndefined,
        )
    return _environment


def render(name: str, **context: Any) -> str:
    """Render the template ``"<app>/<file>"``.

    Raises:
        jinja2.TemplateNotFound: no such application or file.
    """
    return environment().get_template(name).render(**context)
