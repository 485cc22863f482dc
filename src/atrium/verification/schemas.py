"""Request and response bodies of the account email flows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.examples import EXAMPLE_PASSWORD
from atrium.core.schemas import POLICY_MARK, EmailAddress, RequestModel

# Emailed tokens are 43 characters (256 bits, URL-safe base64); anything far longer is
# refused before it reaches the database.
_TOKEN = Field(max_length=128, examples=["Qm9vdHN0cmFwIHRva2VuIGV4YW1wbGUgMDEyMzQ1Njc4OQ"])


class TokenRequest(RequestModel):
    """A token from an emailed link."""

    token: str = _TOKEN


class PasswordForgotRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ada@example.com"}]})

    email: EmailAddress


class PasswordResetRequest(RequestModel):
    token: str = _TOKEN
    new_password: str = Field(
        max_length=1024,
        examples=["new correct horse battery"],
        json_schema_extra={POLICY_MARK: True},
    )


class EmailChangeRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"new_email": "ada@new.example", "password": EXAMPLE_PASSWORD}]
        }
    )

    new_email: EmailAddress
    password: str = Field(max_length=1024)


class Accepted(BaseModel):
    """202: the request was taken; any email follows asynchronously."""

    detail: str
