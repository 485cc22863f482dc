"""The OpenAPI document says what the server does (checked by schemathesis, all checks).

FastAPI's generated document is corrected once, when first built:

- every 422 is ``application/problem+json`` with :class:`ProblemDetails` (FastAPI documents
  its own ``HTTPValidationError`` as ``application/json``, which Atrium never sends);
- every operation with a request body documents 400 ``bad_request`` (a body that cannot
  be parsed in the declared media type, e.g. a broken multipart stream).

:func:`allowed_methods` gives a path's documented methods (and HEAD with GET), for the
``Allow`` header of every 405 (RFC 9110 §15.5.6).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fastapi import FastAPI, routing
from starlette.routing import compile_path

from atrium.core.schemas import POLICY_MARK
from atrium.errors import PROBLEM_JSON, problem_schema

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": problem_schema()}},
    }


def _password_lengths(schema: dict[str, Any], lengths: tuple[int, int]) -> None:
    """The fields the password policy checks state its configured lengths (in characters
    as entered, as the policy counts them)."""
    for component in schema.get("components", {}).get("schemas", {}).values():
        for prop in component.get("properties", {}).values():
            if prop.pop(POLICY_MARK, False):
                prop["minLength"], prop["maxLength"] = lengths


def _correct(schema: dict[str, Any], lengths: tuple[int, int]) -> dict[str, Any]:
    _password_lengths(schema, lengths)
    for item in schema.get("paths", {}).values():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            responses = op.setdefault("responses", {})
            if "422" in responses:
                described = responses["422"].get("description", "")
                if "`validation_error`" not in described:
                    described = "`validation_error`"
                responses["422"] = _problem(described)
            if "requestBody" in op and "400" not in responses:
                responses["400"] = _problem("`bad_request`: the body cannot be parsed")
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install_openapi(app: FastAPI, *, password_lengths: tuple[int, int]) -> None:
    """Replace ``app.openapi`` by the corrected document (built once, then cached).
    ``password_lengths``: the password policy's (minimum, maximum) in characters."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _correct(generate(), password_lengths)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.allow_index = None
    app.state.allowed_methods = functools.partial(allowed_methods, app)


def documented_methods(app: FastAPI) -> dict[str, list[str]]:
    """Each documented path template with its methods, in the OpenAPI document's order
    (``_METHODS``), read from the routes the document is generated from (FastAPI's
    ``get_openapi``: every ``APIRoute`` included in the schema) without generating it."""
    found: dict[str, set[str]] = {}
    for route in routing.iter_route_contexts(app.routes):
        template = route.path_format
        if not isinstance(route.original_route, routing.APIRoute) or template is None:
            continue
        if not route.include_in_schema:
            continue
        found.setdefault(template, set()).update(m.lower() for m in route.methods or ())
    return {path: [m.upper() for m in _METHODS if m in methods] for path, methods in found.items()}


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the OpenAPI document lists for ``path`` (HEAD added with GET), or None
    when no documented path matches.

    The index is built on the first 405 from the routes (:func:`documented_methods`):
    generating the document for it took ~0.7 s of CPU in a worker that had not served
    ``/openapi.json`` yet."""
    index: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allow_index", None)
    if index is None:
        index = []
        for template, methods in documented_methods(app).items():
            if "GET" in methods and "HEAD" not in methods:
                methods.append("HEAD")
            index.append((compile_path(template)[0], methods))
        app.state.allow_index = index
    for pattern, methods in index:
        if pattern.match(path):
            return methods
    return None
