import asyncio

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..database import transaction
from ..errors import AuthenticationError, ConflictError
from ..security import hash_password, verify_password
from .models import User
from .selectors import normalize_email, user_get_by_email


async def user_register(
    *, session: AsyncSession, email: str, password: str, full_name: str | None = None
) -> User:
    # Hashing is deliberately slow; run it off the event loop.
    hashed_password = await asyncio.to_thread(hash_password, password)
    user = User(email=normalize_email(email), hashed_password=hashed_password, full_name=full_name)
    try:
        async with transaction(session):
            if await user_get_by_email(session=session, email=user.email) is not None:
                raise ConflictError("A user with this email address already exists.")
            session.add(user)
    except IntegrityError:
        # Another request registered the same address between our check and our insert.
        raise ConflictError("A user with this email address already exists.") from None
    return user


async def user_authenticate(*, session: AsyncSession, email: str, password: str) -> User:
    user = await user_get_by_email(session=session, email=email)
    hashed = user.hashed_password if user is not None else None
    password_matches = await asyncio.to_thread(verify_password, password, hashed)
    if user is None or not password_matches or not user.is_active:
        raise AuthenticationError("Incorrect email or password.")
    return user
