from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..database import transaction
from ..errors import AuthenticationError, ConflictError
from ..security import hash_password, verify_password
from .models import User
from .selectors import normalize_email, user_get_by_email


def user_register(
    *, session: Session, email: str, password: str, full_name: str | None = None
) -> User:
    # Hashed before the transaction opens: argon2 is deliberately slow.
    hashed_password = hash_password(password)
    user = User(email=normalize_email(email), hashed_password=hashed_password, full_name=full_name)
    try:
        with transaction(session):
            if user_get_by_email(session=session, email=user.email) is not None:
                raise ConflictError("A user with this email address already exists.")
            session.add(user)
    except IntegrityError:
        # Another request registered the same address between our check and our insert.
        raise ConflictError("A user with this email address already exists.") from None
    return user


def user_authenticate(*, session: Session, email: str, password: str) -> User:
    user = user_get_by_email(session=session, email=email)
    hashed = user.hashed_password if user is not None else None
    password_matches = verify_password(password, hashed)
    if user is None or not password_matches or not user.is_active:
        raise AuthenticationError("Incorrect email or password.")
    return user
