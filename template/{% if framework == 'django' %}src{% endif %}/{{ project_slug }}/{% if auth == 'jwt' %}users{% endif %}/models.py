from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from ..security import hash_password, verify_password


class User(AbstractBaseUser):
    """The account model (AUTH_USER_MODEL), keyed by email; `password` holds an argon2 hash."""

    # Stored lowercased (the services lowercase it, the check below refuses anything else), so the
    # plain unique index is case-insensitive on every database. A unique index on LOWER(email)
    # would not do: MariaDB has no expression indexes, and Django skips the constraint there.
    email = models.EmailField(max_length=320, unique=True)
    full_name = models.CharField(max_length=200, null=True, blank=True)  # null: not given
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="users_user_email_lowercase"
            ),
        ]

    def __str__(self) -> str:
        return self.email

    # Django's password API, hashing with the same argon2 hasher as the rest of the service.
    def set_password(self, raw_password: str | None) -> None:
        if raw_password is None:
            self.set_unusable_password()
        else:
            self.password = hash_password(raw_password)

    def check_password(self, raw_password: str | None) -> bool:
        if raw_password is None or not self.has_usable_password():
            return False
        return verify_password(raw_password, self.password)
