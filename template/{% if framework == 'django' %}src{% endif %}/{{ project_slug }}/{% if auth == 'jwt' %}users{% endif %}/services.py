from django.db import IntegrityError, transaction

from ..errors import AuthenticationError, ConflictError
from ..security import verify_password
from .models import User
from .selectors import normalize_email, user_get_by_email


def user_register(*, email: str, password: str, full_name: str | None = None) -> User:
    user = User(email=normalize_email(email), full_name=full_name)
    user.set_password(password)  # hashing is deliberately slow: done before the transaction
    try:
        with transaction.atomic():
            if user_get_by_email(email=user.email) is not None:
                raise ConflictError("A user with this email address already exists.")
            user.save()
    except IntegrityError:
        # Another request registered the same address between our check and our insert.
        raise ConflictError("A user with this email address already exists.") from None
    return user


def user_authenticate(*, email: str, password: str) -> User:
    user = user_get_by_email(email=email)
    hashed = user.password if user is not None else None
    password_matches = verify_password(password, hashed)
    if user is None or not password_matches or not user.is_active:
        raise AuthenticationError("Incorrect email or password.")
    return user
