"""The raffles application's operations are documented like the platform's: a summary,
problem+json client errors naming their codes, examples for bodies and answers, and
security declared exactly on the operations that need a caller."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_openapi import (
    PROBLEM_JSON,
    assert_405_index_matches,
    has_examples,
    operations,
    resolve,
)

PUBLIC = {
    ("get", "/api/v1/raffles"),
    ("get", "/api/v1/raffles/draw-log"),
    ("get", "/api/v1/raffles/{raffle_id}"),
    ("get", "/api/v1/raffles/{raffle_id}/draw"),
    ("get", "/api/v1/raffles/{raffle_id}/ledger"),
    ("post", "/api/v1/payments/stripe/webhook"),
}


def _ours(path: str) -> bool:
    return any(part in path for part in ("raffles", "/payments/", "/me/purchases", "/me/tickets"))


@pytest.fixture
async def raffle_operations(openapi_spec: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    spec = openapi_spec
    ours = [(m, p, op) for m, p, op in operations(spec) if _ours(p)]
    assert len(ours) >= 10
    return spec, ours


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_every_raffles_operation_has_a_summary_and_problem_json_errors(
    raffle_operations: tuple[dict[str, Any], list[Any]],
) -> None:
    spec, ours = raffle_operations
    missing = []
    for method, path, op in ours:
        problems = {
            code: resp
            for code, resp in op["responses"].items()
            if code.startswith("4") and PROBLEM_JSON in resp.get("content", {})
        }
        schemas = [resolve(spec, r["content"][PROBLEM_JSON]["schema"]) for r in problems.values()]
        if not str(op.get("summary", "")).strip() or not problems:
            missing.append(f"{method} {path}")
        if any(s.get("title") != "ProblemDetails" for s in schemas):
            missing.append(f"{method} {path} schema")
        if any("`" not in r["description"] for r in problems.values()):
            missing.append(f"{method} {path} codes")

    assert missing == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_every_raffles_body_and_answer_has_an_example(
    raffle_operations: tuple[dict[str, Any], list[Any]],
) -> None:
    spec, ours = raffle_operations
    missing = []
    for method, path, op in ours:
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and not has_examples(spec, body):
            missing.append(f"{method} {path} body")
        for code, resp in op["responses"].items():
            media = resp.get("content", {}).get("application/json")
            if code.startswith("2") and media is not None:
                schema = resolve(spec, media["schema"])
                item = schema.get("properties", {}).get("items", {}).get("items")
                target = {"schema": item} if item else media
                if not has_examples(spec, target):
                    missing.append(f"{method} {path} {code}")

    assert missing == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_security_is_declared_on_exactly_the_operations_that_need_a_caller(
    raffle_operations: tuple[dict[str, Any], list[Any]],
) -> None:
    _, ours = raffle_operations

    wrong = [f"{m} {p}" for m, p, op in ours if ("security" in op) == ((m, p) in PUBLIC)]

    assert wrong == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_405_index_lists_the_applications_paths_too(
    app: Any, openapi_spec: dict[str, Any]
) -> None:
    assert any(_ours(path) for path in openapi_spec["paths"])
    assert_405_index_matches(app, openapi_spec)
