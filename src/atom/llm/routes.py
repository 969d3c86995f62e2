"""`/api/llm`: provider configs (admin writes, viewer reads), a provider test, usage and budgets.

Keys go in (`api_key`) and never come out: responses say only `has_key`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from cryptography.fernet import Fernet
from fastapi import APIRouter, Depends, Query, Response

from atom.deps import AdminDep, SessionDep, SettingsDep, ViewerDep
from atom.errors import InvalidInput
from atom.llm import service
from atom.llm.models import LLMProvider
from atom.llm.schemas import (
    BudgetIn,
    BudgetRead,
    ProviderCreate,
    ProviderIn,
    ProviderList,
    ProviderRead,
    ProviderTestIn,
    ProviderTestResult,
    UsageReport,
)
from atom.security.secrets_routes import get_cipher

router = APIRouter(prefix="/api/llm", tags=["llm"])

CipherDep = Annotated[Fernet, Depends(get_cipher)]
GROUPS = ("agent", "provider", "day", "model")


def _read(provider: LLMProvider) -> ProviderRead:
    return ProviderRead(
        name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url,
        models=list(provider.models),
        priority=provider.priority,
        enabled=provider.enabled,
        has_key=bool(provider.key_secret),
        healthy=provider.healthy,
        last_error=provider.last_error,
        last_checked_at=provider.last_checked_at,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


@router.post("/providers", response_model=ProviderRead, status_code=201)
async def create_provider(
    body: ProviderCreate, principal: AdminDep, session: SessionDep, cipher: CipherDep
) -> ProviderRead:
    provider = await service.create_provider(session=session, cipher=cipher, data=body, actor_id=principal.user_id)
    return _read(provider)


@router.get("/providers", response_model=ProviderList)
async def list_providers(principal: ViewerDep, session: SessionDep) -> ProviderList:
    return ProviderList(items=[_read(p) for p in await service.list_providers(session=session)])


@router.get("/providers/{name}", response_model=ProviderRead)
async def show_provider(name: str, principal: ViewerDep, session: SessionDep) -> ProviderRead:
    return _read(await service.get_provider(session=session, name=name))


@router.put("/providers/{name}", response_model=ProviderRead)
async def replace_provider(
    name: str, body: ProviderIn, principal: AdminDep, session: SessionDep, cipher: CipherDep, response: Response
) -> ProviderRead:
    provider, created = await service.replace_provider(
        session=session, cipher=cipher, name=name, data=body, actor_id=principal.user_id
    )
    if created:
        response.status_code = 201
    return _read(provider)


@router.delete("/providers/{name}", status_code=204, response_class=Response)
async def delete_provider(name: str, principal: AdminDep, session: SessionDep) -> Response:
    await service.delete_provider(session=session, name=name, actor_id=principal.user_id)
    return Response(status_code=204)


@router.post("/providers/{name}/test", response_model=ProviderTestResult)
async def test_provider(
    name: str,
    principal: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    cipher: CipherDep,
    body: ProviderTestIn | None = None,
) -> ProviderTestResult:
    """Send one tiny chat turn to this provider; 200 with `healthy: false` and the error when it fails."""
    outcome = await service.check_provider(
        session=session, cipher=cipher, settings=settings, name=name, model=body.model if body else None
    )
    return ProviderTestResult(**outcome.__dict__)


@router.get("/usage", response_model=UsageReport)
async def usage(
    principal: ViewerDep,
    session: SessionDep,
    group_by: Annotated[
        str, Query(max_length=60, description="Comma list of agent, provider, day, model (empty: totals only).")
    ] = "agent,provider,day",
    since: Annotated[date | None, Query(description="First day (UTC), inclusive.")] = None,
    until: Annotated[date | None, Query(description="Last day (UTC), inclusive.")] = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    provider: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> UsageReport:
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or len(set(groups)) != len(groups):
        raise InvalidInput(
            f"group_by takes distinct values among {', '.join(GROUPS)}.",
            code="LLM_USAGE_GROUP_INVALID",
            details={"field": "group_by"},
        )
    if since is not None and until is not None and since > until:
        raise InvalidInput("since must not be after until.", code="LLM_USAGE_RANGE_INVALID")
    rows, total = await service.usage_report(
        session=session,
        group_by=groups,
        since=since,
        until=until,
        agent_id=agent_id,
        provider=provider,
        limit=limit,
    )
    return UsageReport(group_by=groups, since=since, until=until, rows=rows, total=total)


async def _budget(session: SessionDep, settings: SettingsDep, agent_id: str) -> BudgetRead:
    state = await service.budget_state(session=session, settings=settings, agent_id=agent_id)
    return BudgetRead(**state.__dict__)


@router.get("/budgets/{agent_id}", response_model=BudgetRead)
async def show_budget(agent_id: str, principal: ViewerDep, session: SessionDep, settings: SettingsDep) -> BudgetRead:
    return await _budget(session, settings, agent_id)


@router.put("/budgets/{agent_id}", response_model=BudgetRead)
async def set_budget(
    agent_id: str, body: BudgetIn, principal: AdminDep, session: SessionDep, settings: SettingsDep
) -> BudgetRead:
    await service.set_budget(session=session, agent_id=agent_id, data=body, actor_id=principal.user_id)
    return await _budget(session, settings, agent_id)


@router.delete("/budgets/{agent_id}", status_code=204, response_class=Response)
async def delete_budget(agent_id: str, principal: AdminDep, session: SessionDep) -> Response:
    await service.delete_budget(session=session, agent_id=agent_id, actor_id=principal.user_id)
    return Response(status_code=204)
