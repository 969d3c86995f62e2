"""Shared fixtures. Every fixture built on `settings` runs once on SQLite and once on PostgreSQL.

- `settings`: Settings for a fresh, migrated database (tmp data dir).
- `db`: the `Database`; `session`: a session you commit yourself. On PostgreSQL the tables are
  emptied after each test that uses `db` (tests that only take `settings` must also take `db`).
- `app`, `client`: the FastAPI app and an httpx client bound to it in-process.
- `make_user(role)`: a user with an API key -> `UserWithKey` (use `.headers`).
- `registries` (autouse): fresh registries (catalogue, tools, workflow actions, executors) installed
  for each test, as `create_app` and the CLI build them; what a test registers does not leak.
Domain factories live in `tests/support/`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database
from atom.main import create_app
from atom.registries import Registries, build_registries
from atom.registries import install as install_registries
from atom.security import service as security
from atom.security.models import Role

# The CLI's rich console reads the width once, when it is first imported, and tests run in parallel
# worker processes without a terminal: a fixed wide width keeps table cells whole in every test.
os.environ.setdefault("COLUMNS", "200")
from atom.security.schemas import UserCreate
from tests.support import databases

TEST_SECRET_KEY = "kZ3c3v1cZ0Q1n7o6b3m2c0x9w8v7u6t5s4r3q2p1o0A="


@pytest.fixture(autouse=True)
def registries() -> Iterator[Registries]:
    built = build_registries()
    install_registries(built)
    yield built
    install_registries(None)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (much faster than migrating per test)."""
    import asyncio

    directory = tmp_path_factory.mktemp("sqlite-template")
    settings = Settings(data_dir=directory, database_url=None, _env_file=None)  # type: ignore[call-arg]

    async def build() -> None:
        db = Database(settings)
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(build())
    return directory / "atom.db"


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str | None]:
    """A database created for this test run, migrated once; None when PostgreSQL is unavailable."""
    import asyncio

    server = databases.postgres_server_url()
    if server is None or not asyncio.run(databases.pg_reachable(server)):
        yield None
        return
    url = asyncio.run(databases.create_pg_database(server))

    async def build() -> None:
        db = Database(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(build())
    yield url
    asyncio.run(databases.drop_pg_database(server, url))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(data_dir: Path, database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(
    backend: str,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_database_url: str | None,
    settings_overrides: dict[str, object],
) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if backend == "sqlite":
        shutil.copy(sqlite_template, data_dir / "atom.db")
        return make_settings(data_dir, None, **settings_overrides)
    if postgres_database_url is None:
        databases.missing_service(databases.PG_HINT)
    return make_settings(data_dir, postgres_database_url, **settings_overrides)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    if database.dialect == "postgresql":
        await databases.reset_all_tables(database)
    await database.dispose()


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    async with db.sessionmaker() as s:
        yield s


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, configure_logs=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://atom.test") as c:
        yield c


@dataclass(frozen=True)
class UserWithKey:
    id: str
    username: str
    role: Role
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


MakeUser = Callable[..., Awaitable[UserWithKey]]


@pytest.fixture
def make_user(db: Database) -> MakeUser:
    counter = {"n": 0}

    async def factory(role: Role | str = Role.ADMIN, username: str | None = None) -> UserWithKey:
        counter["n"] += 1
        role = Role(role)
        name = username or f"{role.value}{counter['n']}"
        async with db.session_scope() as s:
            user = await security.create_user(session=s, user_in=UserCreate(username=name, role=role))
            _, plaintext = await security.create_key(session=s, user_id=user.id, name="test")
        return UserWithKey(id=user.id, username=name, role=role, key=plaintext)

    return factory


@pytest.fixture
async def admin(make_user: MakeUser) -> UserWithKey:
    return await make_user(Role.ADMIN)


@pytest.fixture
def redis_url() -> Iterator[str]:
    import asyncio

    url = databases.redis_url()
    if url is None or not asyncio.run(databases.redis_reachable(url)):
        databases.missing_service(databases.REDIS_HINT)
    assert url is not None
    yield url
