"""The documentation points at things that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from atrium.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_test_named_in_the_security_document_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    refs = TEST_REF.findall(text)
    assert refs
    missing = []
    for file, name in refs:
        path = ROOT / file
        if not path.exists() or (name and name not in _test_names(path)):
            missing.append(f"{file}::{name}" if name else file)
    assert missing == []


def _env_names(model: type, prefix: str) -> list[str]:
    names = []
    for field_name, field in model.model_fields.items():  # type: ignore[attr-defined]
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            names += _env_names(annotation, f"{prefix}{field_name.upper()}__")
        else:
            names.append(f"{prefix}{field_name.upper()}")
    return names


SECTION = re.compile(r"^## .*?(?:\(`(ATRIUM_[A-Z_]+__)\*`\))?\s*$")
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \|")


def documented_variables(text: str) -> list[str]:
    """The full variable of every row of the settings tables: a row under a section titled
    ``(`ATRIUM_GROUP__*`)`` names ``ATRIUM_GROUP__<ROW>``; elsewhere the row is the whole
    variable."""
    out = []
    prefix = ""
    for line in text.splitlines():
        if line.startswith("## "):
            match = SECTION.match(line)
            prefix = match.group(1) or "" if match else ""
            continue
        row = ROW.match(line)
        if row:
            out.append(f"{prefix}{row.group(1)}")
    return out


def test_every_setting_is_documented_under_its_group_and_variable() -> None:
    documented = documented_variables((ROOT / "docs" / "configuration.md").read_text())
    settings = _env_names(Settings, "ATRIUM_")

    missing = [env for env in settings if env not in documented]
    # A row under the wrong group names a variable that no setting reads.
    unknown = [env for env in documented if env not in settings]
    assert missing == []
    assert unknown == []
    assert len(documented) == len(set(documented))


def test_the_documentation_check_sees_a_setting_under_the_wrong_group() -> None:
    text = """
## Metrics (`ATRIUM_METRICS__*`)

| variable | default | meaning |
|---|---|---|
| `ENUMERATION_SAFE_REGISTRATION` | `false` | ... |
"""
    assert documented_variables(text) == ["ATRIUM_METRICS__ENUMERATION_SAFE_REGISTRATION"]
