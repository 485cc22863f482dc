"""Templates and translation catalogs."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

from atrium.mail.render import TEMPLATES, available_locales, render_parts

CONTEXT = {
    "product": "Atrium",
    "link": "https://id.example/x?token=abc&next=<b>",
    "hours": 24,
    "minutes": 15,
    "email": "ada@example.com",
    "new_email": "ada@new.example",
    "title": "Your account was re-activated",
    "body": "You can sign in again.",
    "name": "CI <deploy>",
    "prefix": "atr_pat_3xAmPle3",
    "scopes": "users:read",
    "provider": "GitHub",
    "factor_name": "Phone <b>",
    "remaining": 9,
    "device": "Firefox on Linux <b>",
}


def _catalog(path: str) -> list[tuple[str, str, bool]]:
    with resources.files("atrium.mail").joinpath(path).open("rb") as fh:
        catalog = read_po(fh)
    return [(m.id, m.string, m.fuzzy) for m in catalog if m.id]  # type: ignore[misc]


def test_english_and_spanish_are_shipped() -> None:
    assert {"en", "es"} <= available_locales()


def test_spanish_catalog_translates_every_message_of_the_template() -> None:
    template_ids = {mid for mid, _, _ in _catalog("locale/messages.pot")}
    spanish = {
        mid: (text, fuzzy) for mid, text, fuzzy in _catalog("locale/es/LC_MESSAGES/messages.po")
    }

    assert set(TEMPLATES.values()) <= template_ids
    assert template_ids == set(spanish)
    assert all(text and not fuzzy for text, fuzzy in spanish.values())


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("locale", ["en", "es"])
def test_every_template_renders_both_parts(template: str, locale: str) -> None:
    parts = render_parts(template, locale, CONTEXT)

    assert parts.subject
    assert "Atrium" in parts.subject
    assert parts.text.strip()
    assert parts.html.startswith("<!DOCTYPE html>")
    assert "<b>" not in parts.html  # values are escaped in HTML
    if template in ("verify_email", "reset_password", "confirm_email_change"):
        assert CONTEXT["link"] in parts.text
        assert "https://id.example/x?token=abc&amp;next=&lt;b&gt;" in parts.html


def test_spanish_differs_from_english() -> None:
    en = render_parts("password_changed", "en", CONTEXT)
    es = render_parts("password_changed", "es", CONTEXT)

    assert en.subject == "Your Atrium password was changed"
    assert es.subject == "La contraseña de tu cuenta de Atrium ha cambiado"
    assert es.language == "es"
    assert es.text != en.text


def test_each_template_is_compiled_once_per_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker renders every message: compiling its templates each time cost ~4.5 ms
    a message, rendering compiled ones ~0.1 ms. The Spanish catalog stays Spanish and the
    English one English once both are compiled."""
    compiled: list[str | None] = []
    real = Environment.compile

    def counting(self: Environment, source: str, name: str | None = None, *a: Any, **k: Any) -> Any:
        compiled.append(name)
        return real(self, source, name, *a, **k)

    monkeypatch.setattr(Environment, "compile", counting)
    first = [render_parts("password_changed", locale, CONTEXT) for locale in ("es", "en")]
    compiled_first = len(compiled)  # none if an earlier test of this process rendered them
    again = [render_parts("password_changed", locale, CONTEXT) for locale in ("es", "en")]

    assert len(compiled) == compiled_first
    assert again == first
    assert [parts.language for parts in again] == ["es", "en"]
    assert again[0].subject == "La contraseña de tu cuenta de Atrium ha cambiado"
    assert again[1].subject == "Your Atrium password was changed"
    assert "contraseña" in again[0].text
    assert "contraseña" not in again[1].text
    assert "password" in again[1].text


def test_message_template_is_up_to_date_with_the_sources() -> None:
    from pathlib import Path

    from babel.messages.extract import extract_from_dir

    import atrium.mail

    root = Path(atrium.mail.__file__).parent
    method_map = [
        ("**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    extracted = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(root), method_map, keywords={"_": None}
        )
    }

    assert extracted == {mid for mid, _, _ in _catalog("locale/messages.pot")}
