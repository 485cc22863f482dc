"""The Spanish catalog of the raffles pages (``apps/raffles/locale``) translates every
string those pages and their navigation links can show, keeping the placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import atrium.apps.raffles as raffles

HERE = Path(raffles.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _extracted() -> set[str]:
    method_map = [("templates/pages/**.html", "jinja2")]
    return {
        str(message)
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(HERE), method_map, keywords={"_": None}
        )
        if message
    }


def test_every_string_of_the_raffles_pages_has_a_spanish_translation() -> None:
    with (HERE / "locale/es/LC_MESSAGES/messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="es")
    wanted = _extracted() | {
        link.label for link in (*raffles.app.console_links, *raffles.app.account_links)
    }
    assert len(wanted) > 50  # the extraction found the pages' strings
    missing = sorted(m for m in wanted if not (e := catalog.get(m)) or e.fuzzy or not e.string)
    assert not missing, f"untranslated in apps/raffles/locale/es: {missing}"
    wrong = [
        e.id
        for e in catalog
        if e.id and set(PLACEHOLDER.findall(str(e.id))) != set(PLACEHOLDER.findall(str(e.string)))
    ]
    assert not wrong, wrong
