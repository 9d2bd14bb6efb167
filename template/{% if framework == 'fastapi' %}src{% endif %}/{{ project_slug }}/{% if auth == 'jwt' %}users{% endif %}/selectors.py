from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import User


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def user_get(*, session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def user_get_by_email(*, session: AsyncSession, email: str) -> User | None:
    if "\x00" in email:
        return None  # no account has such an address, and PostgreSQL refuses NUL in text
    statement = select(User).where(User.email == normalize_email(email))
    return await session.scalar(statement)
