from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import User


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_get(*, session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def user_get_by_email(*, session: Session, email: str) -> User | None:
    if "\x00" in email:
        return None  # no account has such an address, and PostgreSQL refuses NUL in text
    statement = select(User).where(User.email == normalize_email(email))
    return session.scalar(statement)
