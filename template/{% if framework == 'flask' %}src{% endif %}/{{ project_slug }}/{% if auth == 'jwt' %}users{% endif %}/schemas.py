from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 320


def _email_address(value: str) -> str:
    """The address, normalized, if it is one; its domain is not looked up.

    Like pydantic's EmailStr, except that addresses at .test domains are accepted: RFC 6761 reserves
    .test for testing, and API clients and test suites use it, so the OpenAPI `email` format
    holds for every address the API takes.
    """
    try:
        address = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        reason = {"reason": str(exc)}
        message = "value is not a valid email address: {reason}"
        raise PydanticCustomError("value_error", message, reason) from None
    return address.normalized


EmailAddress = Annotated[
    str,
    Field(max_length=EMAIL_MAX_LENGTH, json_schema_extra={"format": "email"}),
    AfterValidator(_email_address),
]


class UserRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailAddress
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    # No NUL character: PostgreSQL cannot store it.
    full_name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")


class UserRead(BaseModel):
    """A user as the API shows it: never with the password hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str | None
    is_active: bool
    created_at: datetime


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token type, not a password
    expires_in: int = Field(description="Seconds until the token expires.")


class LoginForm(BaseModel):
    """The OAuth2 password form (application/x-www-form-urlencoded)."""

    username: str = Field(min_length=1, description="The account's email address.")
    password: str = Field(min_length=1)
