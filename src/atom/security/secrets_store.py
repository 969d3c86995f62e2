"""Secrets encrypted at rest with Fernet.

The key comes from `ATOM_SECRET_KEY`, else from `<data_dir>/secret.key` (created with mode
0600). Values go in and come out only through `create`/`rotate`/`reveal`; the API lists names, never
values. Every change (create, rotate, delete) writes its audit record here, in the caller's
transaction, whoever the caller is (the API, the CLI, another domain's service): names and
versions only, never a value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.config import Settings
from atom.errors import ConfigurationError, Conflict, NotFound, Unavailable
from atom.pagination import paginate
from atom.security.models import Secret

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}$")


def ensure_key_file(path: Path) -> bytes:
    """Read the key file, creating it (0600, atomically) on first use."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def load_cipher(settings: Settings) -> Fernet:
    if settings.secret_key is not None:
        raw = settings.secret_key.get_secret_value().encode()
        source, fix = (
            "ATOM_SECRET_KEY",
            "generate one with `atom-os secrets generate-key`",
        )
    else:
        raw = ensure_key_file(settings.key_file)
        source, fix = (
            "ATOM_DATA_DIR",
            f"restore {settings.key_file} or delete it to start a new key (old secrets become unreadable)",
        )
    try:
        return Fernet(raw)
    except ValueError as exc:
        raise ConfigurationError("the secret key is not a valid Fernet key.", setting=source, fix=fix) from exc


def _validate_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        from atom.errors import InvalidInput

        raise InvalidInput(
            "A secret name is 1-200 characters of letters, digits and `_.:/-`.",
            code="INVALID_SECRET_NAME",
            details={"field": "name"},
        )


async def _get(session: AsyncSession, name: str) -> Secret:
    secret = await session.scalar(select(Secret).where(Secret.name == name))
    if secret is None:
        raise NotFound(f"No secret named {name!r}.", code="SECRET_NOT_FOUND", details={"name": name})
    return secret


async def _record(session: AsyncSession, actor: audit.Actor, action: str, name: str, version: int | None) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="secret",
        resource_id=name[:64],
        decision="done",
        details={"name": name, "version": version},
    )


async def exists(*, session: AsyncSession, name: str) -> bool:
    return await session.scalar(select(Secret.id).where(Secret.name == name)) is not None


async def create(*, session: AsyncSession, cipher: Fernet, name: str, value: str, actor: audit.Actor) -> Secret:
    _validate_name(name)
    secret = Secret(name=name, ciphertext=cipher.encrypt(value.encode()).decode(), version=1)
    session.add(secret)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A secret named {name!r} exists; rotate it instead.",
            code="SECRET_EXISTS",
            details={"name": name},
        ) from exc
    await _record(session, actor, "secret.create", name, secret.version)
    return secret


async def rotate(*, session: AsyncSession, cipher: Fernet, name: str, value: str, actor: audit.Actor) -> Secret:
    secret = await _get(session, name)
    secret.ciphertext = cipher.encrypt(value.encode()).decode()
    secret.version += 1
    await session.flush()
    await _record(session, actor, "secret.rotate", name, secret.version)
    return secret


async def put(*, session: AsyncSession, cipher: Fernet, name: str, value: str, actor: audit.Actor) -> Secret:
    """Create `name`, or rotate it when it exists."""
    if await exists(session=session, name=name):
        return await rotate(session=session, cipher=cipher, name=name, value=value, actor=actor)
    return await create(session=session, cipher=cipher, name=name, value=value, actor=actor)


async def delete(*, session: AsyncSession, name: str, actor: audit.Actor, missing_ok: bool = False) -> None:
    secret = await session.scalar(select(Secret).where(Secret.name == name))
    if secret is None:
        if missing_ok:
            return
        raise NotFound(f"No secret named {name!r}.", code="SECRET_NOT_FOUND", details={"name": name})
    await session.delete(secret)
    await session.flush()
    await _record(session, actor, "secret.delete", name, None)


async def versions(*, session: AsyncSession, names: list[str]) -> dict[str, str]:
    """Secret name -> `<id>:<version>`: changes when a secret is rotated, or deleted and stored again."""
    if not names:
        return {}
    rows = await session.execute(select(Secret.name, Secret.id, Secret.version).where(Secret.name.in_(names)))
    return {name: f"{secret_id}:{version}" for name, secret_id, version in rows.all()}


async def list_secrets(*, session: AsyncSession, limit: int, cursor: str | None) -> tuple[list[Secret], str | None]:
    return await paginate(session, select(Secret), id_column=Secret.id, limit=limit, cursor=cursor)


async def reveal(*, session: AsyncSession, cipher: Fernet, name: str) -> str:
    """For code that uses the secret (an LLM client, an integration). Never for an API response."""
    secret = await _get(session, name)
    try:
        return cipher.decrypt(secret.ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise Unavailable(
            f"Secret {name!r} cannot be decrypted with the current key.",
            code="SECRET_UNREADABLE",
            details={"name": name},
        ) from exc
