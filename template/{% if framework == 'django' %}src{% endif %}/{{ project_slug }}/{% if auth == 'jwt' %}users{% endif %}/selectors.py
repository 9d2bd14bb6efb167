from .models import User


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_get(*, user_id: int) -> User | None:
    return User.objects.filter(pk=user_id).first()


def user_get_by_email(*, email: str) -> User | None:
    if "\x00" in email:
        return None  # no account has such an address, and PostgreSQL refuses NUL in text
    return User.objects.filter(email=normalize_email(email)).first()
