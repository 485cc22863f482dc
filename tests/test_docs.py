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


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = []
    for env in _env_names(Settings, "ATRIUM_"):
        group, _, leaf = env.rpartition("__")
        # Grouped settings are listed by their leaf name in the group's table.
        documented = f"`{env}`" in text if not group else f"`{leaf}`" in text
        if not documented:
            missing.append(env)
    assert missing == []
