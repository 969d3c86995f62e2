"""Users and API keys. Keyword-only, session first; functions flush, callers commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.base import utcnow
from atom.db.session import on_commit, rows_affected
from atom.errors import Conflict, NotFound, Unauthorized
from atom.events.bus import get_bus
from atom.pagination import paginate
from atom.security import credentials
from atom.security.models import ApiKey, Role, User
from atom.security.principal import Principal
from atom.security.principal_cache import PRINCIPALS_CHANGED, marker_for, principal_cache, touch_marker
from atom.security.schemas import UserCreate, UserUpdate

# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


async def create_user(*, session: AsyncSession, user_in: UserCreate) -> User:
    user = User(
        username=user_in.username,
        email=user_in.email,
        role=user_in.role.value,
        password_hash=credentials.hash_password(user_in.password) if user_in.password else None,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A user named {user_in.username!r} already exists.",
            code="USER_EXISTS",
            details={"username": user_in.username},
        ) from exc
    return user


def announce_principals_changed(session: AsyncSession, **payload: str) -> None:
    """A key or user changed in a way that can take access away: every process forgets its cached
    principals, here at once and again after commit, in other processes through the bus (Redis) and
    the SQLite marker file (`security.principal_cache`)."""
    principal_cache.invalidate()
    marker = marker_for(session.get_bind().engine.url)

    def committed() -> None:
        principal_cache.invalidate()
        get_bus().publish_soon(PRINCIPALS_CHANGED, dict(payload))
        touch_marker(marker)

    on_commit(session, committed)


async def get_user(*, session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.", code="USER_NOT_FOUND", details={"user_id": user_id})
    return user


async def get_user_by_name(*, session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user named {username!r}.", code="USER_NOT_FOUND", details={"username": username})
    return user


async def usernames_by_id(*, session: AsyncSession, user_ids: set[str]) -> dict[str, str]:
    """The username of each user id found (a person shown by name, not by id)."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {user_id: username for user_id, username in rows.all()}


async def list_users(*, session: AsyncSession, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
    return await paginate(session, select(User), id_column=User.id, limit=limit, cursor=cursor)


async def update_user(*, session: AsyncSession, user_id: str, user_in: UserUpdate) -> User:
    user = await get_user(session=session, user_id=user_id)
    announce_principals_changed(session, user_id=user_id)
    if user_in.role is not None:
        user.role = user_in.role.value
    if user_in.email is not None:
        user.email = user_in.email
    if user_in.is_active is not None:
        user.is_active = user_in.is_active
    await session.flush()
    return user


async def count_users(*, session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def create_key(*, session: AsyncSession, user_id: str, name: str) -> tuple[ApiKey, str]:
    """Returns the stored key row and the plaintext, which is never stored or shown again."""
    await get_user(session=session, user_id=user_id)
    material = credentials.generate_key()
    key = ApiKey(
        user_id=user_id,
        name=name,
        prefix=material.prefix,
        key_hash=material.key_hash,
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    return key, material.plaintext


async def list_keys(
    *, session: AsyncSession, user_id: str | None, limit: int, cursor: str | None
) -> tuple[list[ApiKey], str | None]:
    stmt = select(ApiKey)
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    return await paginate(session, stmt, id_column=ApiKey.id, limit=limit, cursor=cursor)


async def get_key(*, session: AsyncSession, key_id: str) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id!r}.", code="API_KEY_NOT_FOUND", details={"key_id": key_id})
    return key


async def revoke_key(*, session: AsyncSession, key_id: str) -> ApiKey:
    key = await get_key(session=session, key_id=key_id)
    if key.revoked_at is None:
        announce_principals_changed(session, key_id=key_id)
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def authenticate_key(*, session: AsyncSession, plaintext: str) -> Principal:
    """Resolve a presented API key to its principal, or raise Unauthorized (one message for all causes).

    Read-only: recording the key's last use is `touch_key`, run later in a transaction of its own
    (`key_use.KeyUseRecorder`), so authenticating never writes or holds a second connection.
    """
    invalid = Unauthorized("The API key is missing, invalid or revoked.", code="INVALID_API_KEY")
    prefix = credentials.parse_prefix(plaintext)
    if prefix is None:
        raise invalid
    row = await session.execute(select(ApiKey, User).join(User).where(ApiKey.prefix == prefix))
    found = row.first()
    if found is None:
        raise invalid
    key, user = found
    if key.revoked_at is not None or not user.is_active or not credentials.key_matches(plaintext, key.key_hash):
        raise invalid
    stale = key.last_used_at is None or utcnow() - key.last_used_at > LAST_USED_RESOLUTION
    return Principal(user_id=user.id, username=user.username, role=Role(user.role), key_id=key.id, needs_touch=stale)


async def touch_key(*, session: AsyncSession, key_id: str) -> bool:
    """Record that the key was just used, unless another writer did within the resolution (then False).

    Run it in a transaction of its own, never the request's: `security.key_use.KeyUseRecorder` does.
    """
    now = utcnow()
    result = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
    return rows_affected(result) > 0
