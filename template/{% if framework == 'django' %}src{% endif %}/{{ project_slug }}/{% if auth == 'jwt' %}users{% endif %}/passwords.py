"""The password policy of Django's own commands (AUTH_PASSWORD_VALIDATORS): the length the API's
registration asks for (schemas.py), so a superuser's password is no weaker than a user's."""

from django.core.exceptions import ValidationError

from .schemas import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH


class PasswordLengthValidator:
    def validate(self, password: str, user: object = None) -> None:
        if len(password) < PASSWORD_MIN_LENGTH:
            raise ValidationError(
                f"This password is too short: use at least {PASSWORD_MIN_LENGTH} characters.",
                code="password_too_short",
            )
        if len(password) > PASSWORD_MAX_LENGTH:
            raise ValidationError(
                f"This password is too long: use at most {PASSWORD_MAX_LENGTH} characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password must have {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters."
