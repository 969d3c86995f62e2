from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from atom.security.models import Role

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


class UserCreate(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN)
    role: Role
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class UserUpdate(BaseModel):
    role: Role | None = None
    email: str | None = Field(default=None, max_length=254)
    is_active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    email: str | None
    role: Role
    is_active: bool
    created_at: datetime


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    user_id: str | None = Field(default=None, description="Owner; defaults to the caller. Admin only for others.")


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself. Shown once: only its hash is stored.")
