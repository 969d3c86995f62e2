"""Users and API keys over HTTP. Admins manage users; anyone manages their own keys."""

from __future__ import annotations

from fastapi import APIRouter

from atom.audit import service as audit
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    AdminDep,
    CursorQuery,
    LimitQuery,
    PrincipalDep,
    SessionDep,
)
from atom.errors import Forbidden
from atom.pagination import Page
from atom.security import service
from atom.security.models import Role
from atom.security.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter(prefix="/api", tags=["security"])


@router.get("/me", response_model=UserRead)
async def me(principal: PrincipalDep, session: SessionDep) -> UserRead:
    user = await service.get_user(session=session, user_id=principal.user_id)
    return UserRead.model_validate(user)


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(user_in: UserCreate, principal: AdminDep, session: SessionDep) -> UserRead:
    user = await service.create_user(session=session, user_in=user_in)
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="user.create",
        resource_type="user",
        resource_id=user.id,
        decision="done",
        details={"username": user.username, "role": user.role},
    )
    return UserRead.model_validate(user)


@router.get("/users", response_model=Page[UserRead])
async def list_users(
    principal: AdminDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[UserRead]:
    users, next_cursor = await service.list_users(session=session, limit=limit, cursor=cursor)
    return Page(items=[UserRead.model_validate(u) for u in users], next_cursor=next_cursor)


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(user_id: str, user_in: UserUpdate, principal: AdminDep, session: SessionDep) -> UserRead:
    user = await service.update_user(session=session, user_id=user_id, user_in=user_in)
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="user.update",
        resource_type="user",
        resource_id=user.id,
        decision="done",
        details=user_in.model_dump(exclude_none=True, mode="json"),
    )
    return UserRead.model_validate(user)


@router.post("/keys", response_model=ApiKeyCreated, status_code=201)
async def create_key(key_in: ApiKeyCreate, principal: PrincipalDep, session: SessionDep) -> ApiKeyCreated:
    owner = key_in.user_id or principal.user_id
    if owner != principal.user_id and not principal.has_role(Role.ADMIN):
        raise Forbidden(
            "Only an admin creates keys for another user.",
            code="ROLE_REQUIRED",
            details={"required_role": Role.ADMIN.value, "role": principal.role.value},
        )
    key, plaintext = await service.create_key(session=session, user_id=owner, name=key_in.name)
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="api_key.create",
        resource_type="api_key",
        resource_id=key.id,
        decision="done",
        details={"owner": owner, "name": key.name},
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=plaintext)


@router.get("/keys", response_model=Page[ApiKeyRead])
async def list_keys(
    principal: PrincipalDep,
    session: SessionDep,
    all_users: bool = False,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ApiKeyRead]:
    if all_users and not principal.has_role(Role.ADMIN):
        raise Forbidden(
            "Only an admin lists every user's keys.",
            code="ROLE_REQUIRED",
            details={"required_role": Role.ADMIN.value, "role": principal.role.value},
        )
    keys, next_cursor = await service.list_keys(
        session=session,
        user_id=None if all_users else principal.user_id,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[ApiKeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.delete("/keys/{key_id}", response_model=ApiKeyRead)
async def revoke_key(key_id: str, principal: PrincipalDep, session: SessionDep) -> ApiKeyRead:
    key = await service.get_key(session=session, key_id=key_id)
    if key.user_id != principal.user_id and not principal.has_role(Role.ADMIN):
        raise Forbidden(
            "Only an admin revokes another user's key.",
            code="ROLE_REQUIRED",
            details={"required_role": Role.ADMIN.value, "role": principal.role.value},
        )
    key = await service.revoke_key(session=session, key_id=key_id)
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="api_key.revoke",
        resource_type="api_key",
        resource_id=key.id,
        decision="done",
    )
    return ApiKeyRead.model_validate(key)
