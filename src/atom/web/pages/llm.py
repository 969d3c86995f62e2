"""LLM: providers (add, test, remove; the key field is write-only), usage and cost per agent and day (a
server-side SVG chart and a table), and budgets per agent. Reading is for viewers; changes are admin's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from cryptography.fernet import Fernet
from fastapi import Path, Request
from fastapi.responses import Response
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.config import Settings
from atom.deps import SessionDep, SettingsDep
from atom.llm import service as llm_service
from atom.llm.schemas import BudgetIn, ProviderCreate
from atom.security import secrets_store
from atom.web.auth import AdminForm, PageRouter, ViewerPage
from atom.web.bars import bar_chart
from atom.web.ui import redirect, render

router = PageRouter()

NamePath = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
USAGE_DAYS = 14
KINDS = ("openai", "anthropic")


def _cipher(request: Request) -> Fernet:
    cipher: Fernet | None = getattr(request.app.state, "cipher", None)
    if cipher is None:
        cipher = secrets_store.load_cipher(request.app.state.settings)
        request.app.state.cipher = cipher
    return cipher


async def _context(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    providers = await llm_service.list_providers(session=session)
    since = (datetime.now(UTC) - timedelta(days=USAGE_DAYS - 1)).date()
    by_agent_day, total = await llm_service.usage_report(
        session=session, group_by=["agent", "day"], since=since, until=None, agent_id=None, provider=None, limit=5000
    )
    by_day, _ = await llm_service.usage_report(
        session=session, group_by=["day"], since=since, until=None, agent_id=None, provider=None, limit=USAGE_DAYS
    )
    agents, _ = await agents_service.list_agents(session=session, limit=500, cursor=None)
    names = {a.id: a.name for a in agents}
    days = [(since + timedelta(days=i)).isoformat() for i in range(USAGE_DAYS)]
    cost = {row.day: float(row.cost_usd) for row in by_day}
    budgets = [await llm_service.budget_state(session=session, settings=settings, agent_id=a.id) for a in agents]
    return {
        "title": "LLM",
        "providers": providers,
        "kinds": KINDS,
        "usage": sorted(by_agent_day, key=lambda r: (r.day or "", names.get(r.agent_id or "", "")), reverse=True),
        "total": total,
        "chart": bar_chart([(day[5:], cost.get(day, 0.0)) for day in days], unit="$"),
        "names": names,
        "agents": agents,
        "budgets": budgets,
        "errors": {},
        "values": {},
        "test": None,
    }


@router.get("/llm")
async def page(request: Request, user: ViewerPage, session: SessionDep, settings: SettingsDep) -> Response:
    return render(request, "llm.html", await _context(session, settings))


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else "name"
        errors.setdefault(key, error["msg"])
    return errors


@router.post("/llm/providers")
async def add_provider(request: Request, form_user: AdminForm, session: SessionDep, settings: SettingsDep) -> Response:
    user, form = form_user
    values = {k: form.get(k).strip() for k in ("name", "kind", "base_url", "models", "priority")}
    key = form.get("api_key")  # write-only: never rendered back, not even on an invalid form
    try:
        data = ProviderCreate(
            name=values["name"],
            kind=values["kind"],
            base_url=values["base_url"] or None,
            models=[m.strip() for m in values["models"].split(",") if m.strip()],
            api_key=SecretStr(key) if key else None,
            priority=int(values["priority"] or 100),
        )
    except ValidationError as exc:
        errors = _field_errors(exc)
    except ValueError:
        errors = {"priority": "A whole number from 0 to 10000."}
    else:
        await llm_service.create_provider(
            session=session, cipher=_cipher(request), data=data, actor_id=user.principal.user_id
        )
        return redirect("/llm?flash=provider_added")
    context = await _context(session, settings)
    context.update(errors=errors, values=values)
    return render(request, "llm.html", context, status_code=422)


@router.post("/llm/providers/{name}/test")
async def test_provider(
    request: Request, name: NamePath, form_user: AdminForm, session: SessionDep, settings: SettingsDep
) -> Response:
    outcome = await llm_service.check_provider(
        session=session, cipher=_cipher(request), settings=settings, name=name, model=None
    )
    context = await _context(session, settings)
    context["test"] = outcome
    return render(request, "llm.html", context)


@router.post("/llm/providers/{name}/delete")
async def remove_provider(request: Request, name: NamePath, form_user: AdminForm, session: SessionDep) -> Response:
    user, _ = form_user
    await llm_service.delete_provider(session=session, name=name, actor_id=user.principal.user_id)
    return redirect("/llm?flash=provider_removed")


def _usd(text: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    value = Decimal(text)
    if not value.is_finite() or value < 0:
        raise InvalidOperation
    return value


@router.post("/llm/budgets")
async def set_budget(request: Request, form_user: AdminForm, session: SessionDep, settings: SettingsDep) -> Response:
    user, form = form_user
    agent_id = form.get("agent")[:64]
    values = {"agent": agent_id, "daily_usd": form.get("daily_usd"), "monthly_usd": form.get("monthly_usd")}
    errors: dict[str, str] = {}
    amounts: dict[str, Decimal | None] = {}
    for key in ("daily_usd", "monthly_usd"):
        try:
            amounts[key] = _usd(values[key])
        except (InvalidOperation, ValueError):
            errors[key] = "An amount in USD, like 2.50, or empty for no limit."
    if await agents_service.find_agent(session=session, agent_id=agent_id) is None:
        errors["agent"] = "Choose an agent."
    if not errors:
        try:
            data = BudgetIn(daily_usd=amounts["daily_usd"], monthly_usd=amounts["monthly_usd"])
        except ValidationError as exc:
            errors = _field_errors(exc)
        else:
            await llm_service.set_budget(session=session, agent_id=agent_id, data=data, actor_id=user.principal.user_id)
            return redirect("/llm?flash=budget_saved")
    context = await _context(session, settings)
    context.update(errors=errors, values=values)
    return render(request, "llm.html", context, status_code=422)
