"""Dashboard fixtures.

- `web_user(role)`: a user with a password -> `WebUserInfo` (username, password, id).
- `sign_in(client, user)`: signs an httpx client in through the real form (cookie kept by the client).
- `pending_proposal(...)`: an INTERN agent whose automated trigger became a pending proposal.
- Browser fixtures are in tests/web/browser/conftest.py.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security import service as security
from atom.security.models import Role
from atom.security.schemas import UserCreate
from atom.training import interceptor
from atom.training.plan import Plan, PlanStep
from tests.support.agents import make_agent

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class WebUserInfo:
    id: str
    username: str
    password: str
    role: Role


MakeWebUser = Callable[..., Awaitable[WebUserInfo]]


@pytest.fixture
def web_user(db: Database) -> MakeWebUser:
    counter = {"n": 0}

    async def factory(role: Role | str = Role.VIEWER, username: str | None = None) -> WebUserInfo:
        counter["n"] += 1
        role = Role(role)
        name = username or f"{role.value}-{counter['n']}"
        password = f"pw-{name}-long-enough"
        async with db.session_scope() as s:
            user = await security.create_user(
                session=s, user_in=UserCreate(username=name, role=role, password=password)
            )
        return WebUserInfo(id=user.id, username=name, password=password, role=role)

    return factory


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, user: WebUserInfo, *, next_path: str = "/") -> httpx.Response:
    form = await client.get("/signin")
    response = await client.post(
        "/signin",
        data={
            "csrf_token": csrf_of(form.text),
            "username": user.username,
            "password": user.password,
            "next": next_path,
        },
    )
    assert response.status_code == 303, response.text
    return response


async def page_csrf(client: httpx.AsyncClient, path: str = "/") -> str:
    return csrf_of((await client.get(path)).text)


async def pending_proposal(
    db: Database,
    settings: Settings,
    *,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
) -> str:
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name=name)
    result = await interceptor.intercept(
        db=db,
        settings=settings,
        agent_id=agent.id,
        trigger=interceptor.TriggerInfo(source="schedule", payload=payload or {"why": "nightly report"}),
        plan=Plan(steps=[PlanStep(action="get_current_time", params=params or {"timezone": "UTC"})]),
    )
    assert result.proposal_id is not None
    return result.proposal_id
