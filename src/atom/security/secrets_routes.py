"""The secrets store over HTTP: names and versions only; values go in, never out. Admin only."""

from __future__ import annotations

from datetime import datetime

from cryptography.fernet import Fernet
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from atom.audit import service as audit
from atom.deps import DEFAULT_PAGE_LIMIT, AdminDep, CursorQuery, LimitQuery, SessionDep
from atom.pagination import Page
from atom.security import secrets_store

MAX_SECRET_BYTES = 64 * 1024

router = APIRouter(prefix="/api/secrets", tags=["secrets"])


class SecretCreate(BaseModel):
    name: str = Field(pattern=secrets_store.NAME_PATTERN.pattern)
    value: SecretStr = Field(min_length=1, max_length=MAX_SECRET_BYTES)


class SecretRotate(BaseModel):
    value: SecretStr = Field(min_length=1, max_length=MAX_SECRET_BYTES)


class SecretRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    version: int
    created_at: datetime
    updated_at: datetime


def get_cipher(request: Request) -> Fernet:
    """One cipher per app, built on first use from ATOM_SECRET_KEY or the key file."""
    cipher: Fernet | None = getattr(request.app.state, "cipher", None)
    if cipher is None:
        cipher = secrets_store.load_cipher(request.app.state.settings)
        request.app.state.cipher = cipher
    return cipher


@router.post("", response_model=SecretRead, status_code=201)
async def create_secret(
    secret_in: SecretCreate, principal: AdminDep, session: SessionDep, cipher: Fernet = Depends(get_cipher)
) -> SecretRead:
    secret = await secrets_store.create(
        session=session,
        cipher=cipher,
        name=secret_in.name,
        value=secret_in.value.get_secret_value(),
        actor=audit.Actor.user(principal.user_id),
    )
    return SecretRead.model_validate(secret)


@router.get("", response_model=Page[SecretRead])
async def list_secrets(
    principal: AdminDep, session: SessionDep, limit: LimitQuery = DEFAULT_PAGE_LIMIT, cursor: CursorQuery = None
) -> Page[SecretRead]:
    rows, next_cursor = await secrets_store.list_secrets(session=session, limit=limit, cursor=cursor)
    return Page(items=[SecretRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.put("/{name:path}", response_model=SecretRead)
async def rotate_secret(
    name: str, body: SecretRotate, principal: AdminDep, session: SessionDep, cipher: Fernet = Depends(get_cipher)
) -> SecretRead:
    secret = await secrets_store.rotate(
        session=session,
        cipher=cipher,
        name=name,
        value=body.value.get_secret_value(),
        actor=audit.Actor.user(principal.user_id),
    )
    return SecretRead.model_validate(secret)


@router.delete("/{name:path}", status_code=204, response_class=Response)
async def delete_secret(name: str, principal: AdminDep, session: SessionDep) -> Response:
    await secrets_store.delete(session=session, name=name, actor=audit.Actor.user(principal.user_id))
    return Response(status_code=204)
