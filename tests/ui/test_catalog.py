"""The Spanish catalog of the pages translates every string the pages can show; the
templates' helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import atrium.ui
from atrium.ui.rendering import environment

UI = Path(atrium.ui.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> dict[str, tuple[str, ...]]:
    """msgid -> (msgid, plural?) of every marked string, as ``pybabel extract -F
    src/atrium/ui/locale/babel.cfg`` finds them."""
    found: dict[str, tuple[str, ...]] = {}
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(UI), method_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2)}
    ):
        ids = (message,) if isinstance(message, str) else tuple(message)
        if ids[0]:
            found[ids[0]] = ids
    return found


def _spanish() -> Catalog:
    path = resources.files("atrium.ui").joinpath("locale/es/LC_MESSAGES/messages.po")
    with path.open("rb") as fh:
        return read_po(fh, locale="es")


def test_every_string_of_the_pages_has_a_spanish_translation() -> None:
    catalog = _spanish()
    extracted = _extracted()
    assert len(extracted) > 300  # the extraction found the pages' strings
    missing = []
    for msgid, ids in extracted.items():
        entry = catalog.get(msgid)
        strings = (
            ()
            if entry is None
            else (entry.string if isinstance(entry.string, tuple) else (entry.string,))
        )
        if (
            entry is None
            or entry.fuzzy
            or not strings
            or not all(strings)
            or (len(ids) == 2 and len(strings) != 2)
        ):
            missing.append(msgid)
    assert not missing, f"untranslated in es/messages.po: {missing}"


def test_spanish_translations_keep_the_placeholders() -> None:
    catalog = _spanish()
    wrong = []
    for entry in catalog:
        if not entry.id or not entry.string:
            continue
        source = entry.id if isinstance(entry.id, str) else entry.id[0]
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = set(PLACEHOLDER.findall(source))
        for translated in strings:
            if set(PLACEHOLDER.findall(translated)) != wanted:
                wrong.append(source)
    assert not wrong, wrong


def test_the_when_filter_writes_what_the_when_macro_writes() -> None:
    env = environment("en")
    macro = env.from_string('{% import "macros.html" as m %}{{ m.when(v) }}')
    filtered = env.from_string("{{ v|when }}")
    at = datetime(2026, 12, 2, 9, 5, 7, tzinfo=UTC)
    assert filtered.render(v=at) == macro.render(v=at)
    assert '<time datetime="2026-12-02T09:05:07+00:00">2026-12-02 09:05 UTC</time>' in (
        filtered.render(v=at)
    )
    assert filtered.render(v=None) == macro.render(v=None) == "—"
