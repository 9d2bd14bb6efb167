from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


class UserRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    full_name: str | None = Field(default=None, min_length=1, max_length=200)


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
