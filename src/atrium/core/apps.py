"""Applications built on Atrium: what an application declares, and loading the ones listed
in ``ATRIUM_APPS``.

An application is a package (``atrium.apps.<name>``, or any importable dotted path) whose
``app`` attribute is an :class:`AtriumApp`. The platform never imports an application
statically (an import-linter contract): :func:`load_apps` imports the listed ones at
start-up, and :func:`atrium.main.create_app` registers what they declare (permissions
through the RBAC catalogue, audit actions, routers under ``/api/v1``, settings, templates);
``atrium migrate`` runs their Alembic branches. docs/architecture.md, "Adding an
application", is the checklist.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from fastapi import APIRouter
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from atrium.core.jobs import Job

APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
APPS_PACKAGE = "atrium.apps"
S = TypeVar("S", bound=BaseSettings)


class AppLoadError(ValueError):
    """An entry of ``ATRIUM_APPS`` cannot be loaded; the message names it and says why."""


@dataclass(frozen=True)
class PageLink:
    """A link an application adds to a hosted page's navigation: the admin console's
    sidebar (``AtriumApp.console_links``) or the account's (``AtriumApp.account_links``).

    ``section`` marks the link current when a page renders with that ``section``;
    ``label`` is English, translated by the application's catalog (``AtriumApp.locale``);
    the link is shown only to a browser holding ``permission`` (None: to everyone
    signed in).
    """

    section: str
    href: str
    label: str
    permission: str | None = None


@dataclass(frozen=True)
class AtriumApp:
    """What an application adds to the platform.

    ``name``: lower-case identifier; its permissions are ``<name>:<action>`` or
    ``<name>.<resource>:<action>``, its audit actions ``<name>.<event>``, its Alembic branch
    label and its template prefix are ``name``.
    ``routers``: called once the permissions are registered (so its routes may
    ``require`` them); each router is mounted under ``/api/v1``.
    ``settings``: a ``BaseSettings`` subclass with its own ``env_prefix`` (by convention
    ``ATRIUM_<NAME>__``), read at start-up; a bad value stops start-up.
    ``migrations``: a directory of Alembic revisions whose first revision carries
    ``branch_labels = (name,)``. ``templates``: a directory of Jinja2 templates, rendered
    as ``"<name>/<file>"``. ``jobs``: scheduled jobs (``core.jobs``), run by
    ``atrium worker`` (and the API process in the embedded default). ``commands``: a
    Typer application mounted as ``atrium <name> …``. ``pages``: routers of hosted pages,
    mounted at the root when the pages are enabled (``ui.enabled``); their templates live
    in ``templates`` and may extend the platform's (``admin/layout.html``,
    ``account/layout.html``), and ``console_links``/``account_links`` add them to the
    navigation. ``locale``: a directory of Babel catalogs (``<lang>/LC_MESSAGES/
    messages.po``) merged into the pages' catalogs.
    """

    name: str
    routers: Callable[[], Sequence[APIRouter]] = lambda: ()
    permissions: Mapping[str, str] = field(default_factory=dict)
    audit_actions: Mapping[str, str] = field(default_factory=dict)
    settings: type[BaseSettings] | None = None
    migrations: Path | None = None
    templates: Path | None = None
    jobs: Callable[[], Sequence[Job]] = lambda: ()
    # Email messages (name -> subject) in ``templates/mail/<name>.txt|.html``, queued with
    # ``mail.service.Outbox.enqueue("<name of app>/<name>", ...)``.
    mail_templates: Mapping[str, str] = field(default_factory=dict)
    # Event types (``events.catalogue.EventType``) and notices (event type ->
    # ``notifications.notices.Notice``), registered at start-up before the consumers are
    # built; functions, so that the application imports those layers only when loaded.
    event_types: Callable[[], Sequence[Any]] = lambda: ()
    notices: Callable[[], Mapping[str, Any]] = lambda: {}
    commands: Callable[[], typer.Typer] | None = None
    pages: Callable[[], Sequence[APIRouter]] = lambda: ()
    console_links: Sequence[PageLink] = ()
    account_links: Sequence[PageLink] = ()
    locale: Path | None = None


@dataclass(frozen=True)
class LoadedApp:
    """An application as running: its declaration and its settings, read once."""

    app: AtriumApp
    settings: BaseSettings | None


def module_path(entry: str) -> str:
    """The module of an ``ATRIUM_APPS`` entry: ``raffles`` is ``atrium.apps.raffles``; a
    dotted entry is used as it is."""
    return entry if "." in entry else f"{APPS_PACKAGE}.{entry}"


def _check(app: AtriumApp, entry: str) -> None:
    if not APP_NAME.match(app.name):
        raise AppLoadError(f"ATRIUM_APPS: {entry!r} has an invalid name {app.name!r}")
    for permission in app.permissions:
        resource = permission.partition(":")[0]
        if ":" not in permission or not (
            resource == app.name or resource.startswith(f"{app.name}.")
        ):
            raise AppLoadError(
                f"ATRIUM_APPS: permission {permission!r} of {app.name!r} must be "
                f"'{app.name}:<action>' or '{app.name}.<resource>:<action>'"
            )
    for action in app.audit_actions:
        if not action.startswith(f"{app.name}."):
            raise AppLoadError(
                f"ATRIUM_APPS: audit action {action!r} of {app.name!r} must start with "
                f"'{app.name}.'"
            )
    for link in (*app.console_links, *app.account_links):
        if link.permission is not None and link.permission not in app.permissions:
            raise AppLoadError(
                f"ATRIUM_APPS: the page link {link.href!r} of {app.name!r} needs "
                f"{link.permission!r}, which the application does not declare"
            )
    for directory in (app.migrations, app.templates, app.locale):
        if directory is not None and not directory.is_dir():
            raise AppLoadError(f"ATRIUM_APPS: {app.name!r}: {directory} is not a directory")
    if app.mail_templates and (app.templates is None or not (app.templates / "mail").is_dir()):
        raise AppLoadError(
            f"ATRIUM_APPS: {app.name!r} declares mail templates but no templates/mail"
        )


def declared_apps(entries: Sequence[str]) -> list[AtriumApp]:
    """The :class:`AtriumApp` of each entry, in order (imports the modules).

    Raises:
        AppLoadError: a module cannot be imported, has no ``app``, or breaks the naming
            rules above; two entries share a name.
    """
    out: list[AtriumApp] = []
    for entry in entries:
        try:
            module = importlib.import_module(module_path(entry))
        except ImportError as exc:
            raise AppLoadError(f"ATRIUM_APPS: cannot import {entry!r} ({exc})") from exc
        app = getattr(module, "app", None)
        if not isinstance(app, AtriumApp):
            raise AppLoadError(f"ATRIUM_APPS: {entry!r} has no 'app' of type AtriumApp")
        _check(app, entry)
        if any(a.name == app.name for a in out):
            raise AppLoadError(f"ATRIUM_APPS: two applications are named {app.name!r}")
        out.append(app)
    return out


def read_settings(app: AtriumApp) -> BaseSettings | None:
    """``app``'s settings group from the environment.

    Raises:
        AppLoadError: a value is not valid (the message names the variables, not values).
    """
    if app.settings is None:
        return None
    try:
        return app.settings()
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise AppLoadError(
            f"ATRIUM_APPS: settings of {app.name!r} are not valid: {fields}"
        ) from exc


def app_settings(apps: Mapping[str, LoadedApp], name: str, kind: type[S]) -> S:
    """The settings of the running application ``name``, as ``kind``.

    Raises:
        KeyError: ``name`` is not running. TypeError: its settings are not a ``kind``.
    """
    value: Any = apps[name].settings
    if not isinstance(value, kind):
        raise TypeError(f"the settings of {name!r} are not {kind.__name__}")
    return value


def settings_variables(app: AtriumApp) -> frozenset[str]:
    """The environment variables ``app``'s settings group reads (``ATRIUM_<NAME>__<FIELD>``)."""
    if app.settings is None:
        return frozenset()
    prefix = str(app.settings.model_config.get("env_prefix", ""))
    return frozenset(f"{prefix}{name}".upper() for name in app.settings.model_fields)
