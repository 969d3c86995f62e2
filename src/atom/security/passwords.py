"""Setting a user's password (argon2). Kept apart from users and keys; flushes, the caller commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atom.errors import InvalidInput
from atom.security import credentials
from atom.security import service as security_service
from atom.security.models import User

MIN_LENGTH = 8
MAX_LENGTH = 1024


async def set_password(*, session: AsyncSession, user_id: str, password: str) -> User:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"A password has {MIN_LENGTH} to {MAX_LENGTH} characters.",
            code="PASSWORD_LENGTH",
            details={"min": MIN_LENGTH, "max": MAX_LENGTH},
        )
    user = await security_service.get_user(session=session, user_id=user_id)
    user.password_hash = credentials.hash_password(password)
    await session.flush()
    return user
