"""Base classes for request and response bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# An email address as a request states it: the schema says `format: email` (RFC 5322
# addr-spec) and at most 320 characters; the service validates and normalises it
# (email-validator) and answers 422 `invalid_email` otherwise.
EmailAddress = Annotated[str, Field(max_length=320, json_schema_extra={"format": "email"})]


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422), so a typo or an attempt to set
    ``is_superuser`` never passes silently."""

    model_config = ConfigDict(extra="forbid")


POLICY_MARK = "x-password-policy"
"""``json_schema_extra`` key of the fields checked by the password policy: the OpenAPI
document replaces it by the configured ``minLength``/``maxLength``
(``atrium.openapi.install_openapi``)."""
