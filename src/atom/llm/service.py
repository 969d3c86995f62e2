"""Provider configs, usage records, budgets: the database side of the LLM layer.

A provider's key is stored in the secrets store as `llm.provider.<name>`; this module is the only
code that reveals it, and only to hand it to an SDK client. It is never returned, logged, audited
or put in an error.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.errors import Conflict, InvalidInput, NotFound
from atom.llm import cost
from atom.llm.models import LLMBudget, LLMProvider, LLMUsage
from atom.llm.providers import DEFAULT_BASE_URLS, KINDS, build_provider
from atom.llm.providers.base import (
    BudgetExceeded,
    ChatRequest,
    Message,
    ProviderError,
    TextDelta,
    UnknownModel,
    Usage,
)
from atom.llm.schemas import MODEL_PATTERN, NAME_PATTERN, BudgetIn, ProviderCreate, ProviderIn, UsageRow
from atom.observability.logging import get_logger
from atom.security import secrets_store

log = get_logger("atom.llm")
_MODEL = re.compile(MODEL_PATTERN)
_NAME = re.compile(NAME_PATTERN)
TEST_PROMPT = "Reply with the single word: OK"


def secret_name(provider_name: str) -> str:
    return f"llm.provider.{provider_name}"


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# --- provider configs -------------------------------------------------------------------------


def _validate(data: ProviderIn) -> tuple[str, str, list[str]]:
    """(kind, base_url, models) checked: a known kind, an http(s) URL, well-formed distinct model names."""
    if data.kind not in KINDS:
        raise InvalidInput(
            f"Unknown LLM provider kind {data.kind!r}; use one of: {', '.join(KINDS)}.",
            code="LLM_UNKNOWN_KIND",
            details={"field": "kind", "kinds": list(KINDS)},
        )
    base_url = (data.base_url or DEFAULT_BASE_URLS[data.kind]).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.username or parts.password:
        raise InvalidInput(
            "base_url must be an http(s) URL with a host and no credentials in it.",
            code="LLM_INVALID_BASE_URL",
            details={"field": "base_url"},
        )
    bad = [m for m in data.models if not _MODEL.match(m)]
    if bad:
        raise InvalidInput(
            f"Invalid model name {bad[0][:200]!r}: letters, digits and `._:/@+-`, up to 200 characters.",
            code="LLM_UNKNOWN_MODEL",
            details={"field": "models"},
        )
    models = list(dict.fromkeys(data.models))
    return data.kind, base_url, models


async def get_provider(*, session: AsyncSession, name: str) -> LLMProvider:
    provider = await session.scalar(select(LLMProvider).where(LLMProvider.name == name))
    if provider is None:
        raise NotFound(
            f"No LLM provider named {name!r}; see `atom-os llm list`.",
            code="LLM_PROVIDER_NOT_FOUND",
            details={"name": name},
        )
    return provider


async def list_providers(*, session: AsyncSession, enabled_only: bool = False) -> list[LLMProvider]:
    stmt = select(LLMProvider).order_by(LLMProvider.priority, LLMProvider.name)
    if enabled_only:
        stmt = stmt.where(LLMProvider.enabled.is_(True))
    return list((await session.scalars(stmt)).all())


async def _audit(session: AsyncSession, actor_id: str | None, action: str, provider: LLMProvider) -> None:
    await audit.record(
        session=session,
        actor=audit.Actor.user(actor_id) if actor_id else audit.Actor.system(),
        action=action,
        resource_type="llm_provider",
        resource_id=provider.name,
        decision="done",
        details={"kind": provider.kind, "base_url": provider.base_url, "models": provider.models},
    )


def _actor(actor_id: str | None) -> audit.Actor:
    return audit.Actor.user(actor_id) if actor_id else audit.Actor.system()


async def _store_key(session: AsyncSession, cipher: Fernet, name: str, key: str, actor_id: str | None) -> str:
    secret = secret_name(name)
    await secrets_store.put(session=session, cipher=cipher, name=secret, value=key, actor=_actor(actor_id))
    return secret


async def create_provider(
    *, session: AsyncSession, cipher: Fernet, data: ProviderCreate, actor_id: str | None
) -> LLMProvider:
    kind, base_url, models = _validate(data)
    if await session.scalar(select(LLMProvider.id).where(LLMProvider.name == data.name)) is not None:
        raise Conflict(
            f"An LLM provider named {data.name!r} exists; replace it with PUT (`atom-os llm add ... --replace`).",
            code="LLM_PROVIDER_EXISTS",
            details={"name": data.name},
        )
    provider = LLMProvider(
        name=data.name,
        kind=kind,
        base_url=base_url,
        models=models,
        priority=data.priority,
        enabled=data.enabled,
        key_secret=None,
    )
    key = data.api_key.get_secret_value() if data.api_key is not None else ""
    if key:
        provider.key_secret = await _store_key(session, cipher, data.name, key, actor_id)
    session.add(provider)
    await session.flush()
    await _audit(session, actor_id, "llm.provider.create", provider)
    return provider


async def replace_provider(
    *, session: AsyncSession, cipher: Fernet, name: str, data: ProviderIn, actor_id: str | None
) -> tuple[LLMProvider, bool]:
    """Create or replace `name`; an absent key keeps the stored one. Returns (provider, created)."""
    if not _NAME.match(name):
        raise InvalidInput("Invalid provider name.", code="LLM_INVALID_NAME", details={"field": "name"})
    existing = await session.scalar(select(LLMProvider).where(LLMProvider.name == name))
    if existing is None:
        created = ProviderCreate(name=name, **data.model_dump(exclude={"api_key"}), api_key=data.api_key)
        return await create_provider(session=session, cipher=cipher, data=created, actor_id=actor_id), True
    kind, base_url, models = _validate(data)
    existing.kind, existing.base_url, existing.models = kind, base_url, models
    existing.priority, existing.enabled = data.priority, data.enabled
    existing.healthy, existing.last_error, existing.last_checked_at = None, None, None
    if data.api_key is not None and data.api_key.get_secret_value():
        existing.key_secret = await _store_key(session, cipher, name, data.api_key.get_secret_value(), actor_id)
    existing.updated_at = utcnow()
    await session.flush()
    await _audit(session, actor_id, "llm.provider.update", existing)
    return existing, False


async def delete_provider(*, session: AsyncSession, name: str, actor_id: str | None) -> None:
    provider = await get_provider(session=session, name=name)
    if provider.key_secret:
        await secrets_store.delete(session=session, name=provider.key_secret, actor=_actor(actor_id), missing_ok=True)
    await _audit(session, actor_id, "llm.provider.delete", provider)
    await session.delete(provider)
    await session.flush()


async def reveal_key(*, session: AsyncSession, cipher: Fernet, provider: LLMProvider) -> str:
    if not provider.key_secret:
        return ""
    return await secrets_store.reveal(session=session, cipher=cipher, name=provider.key_secret)


async def key_versions(*, session: AsyncSession, names: list[str]) -> dict[str, str]:
    """Secret name -> `<id>:<version>`: changes when a key is rotated or deleted and stored again."""
    return await secrets_store.versions(session=session, names=names)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    model: str
    healthy: bool
    latency_ms: int
    reply: str | None
    error_code: str | None
    error: str | None


async def check_provider(
    *, session: AsyncSession, cipher: Fernet, settings: Settings, name: str, model: str | None
) -> CheckOutcome:
    """One tiny chat turn straight to this provider (no router, no fallback); stores the health."""
    provider = await get_provider(session=session, name=name)
    chosen = model or provider.models[0]
    if chosen not in provider.models:
        raise UnknownModel(
            f"Provider {name!r} does not serve model {chosen!r}; it serves: {', '.join(provider.models)}.",
            details={"model": chosen, "provider": name},
        )
    key = await reveal_key(session=session, cipher=cipher, provider=provider)
    client = build_provider(
        kind=provider.kind, name=provider.name, base_url=provider.base_url, api_key=key, timeout=settings.llm_timeout_s
    )
    del key
    started = time.monotonic()
    text: list[str] = []
    error: ProviderError | None = None
    usage: Usage | None = None
    try:
        request = ChatRequest(model=chosen, messages=(Message("user", TEST_PROMPT),), max_tokens=16)
        async for event in client.stream_chat(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, Usage):
                usage = event
    except ProviderError as exc:
        error = exc
    finally:
        await client.aclose()
    latency_ms = int((time.monotonic() - started) * 1000)
    if error is not None:
        log.warning("llm.provider_unhealthy", provider=name, model=chosen, code=error.code)
    await record_usage(  # a test costs tokens too: it shows in usage with no agent
        session=session,
        settings=settings,
        provider=name,
        model=chosen,
        usage=usage,
        status="ok" if error is None else "error",
        error_code=None if error is None else error.code,
        duration_ms=latency_ms,
    )
    provider.healthy = error is None
    provider.last_error = None if error is None else f"{error.code}: {error.message}"[:1000]
    provider.last_checked_at = utcnow()
    await session.flush()
    return CheckOutcome(
        name=name,
        model=chosen,
        healthy=error is None,
        latency_ms=latency_ms,
        reply="".join(text)[:200] if error is None else None,
        error_code=None if error is None else error.code,
        error=None if error is None else error.message,
    )


async def mark_unhealthy(*, session: AsyncSession, name: str, error: str) -> None:
    provider = await session.scalar(select(LLMProvider).where(LLMProvider.name == name))
    if provider is not None:
        provider.healthy, provider.last_error, provider.last_checked_at = False, error[:1000], utcnow()
        await session.flush()


# --- usage ------------------------------------------------------------------------------------


async def record_usage(
    *,
    session: AsyncSession,
    settings: Settings,
    provider: str,
    model: str,
    usage: Usage | None,
    agent_id: str | None = None,
    execution_id: str | None = None,
    status: str = "ok",
    error_code: str | None = None,
    duration_ms: int = 0,
) -> LLMUsage:
    used = usage or Usage(0, 0, estimated=True)
    row = LLMUsage(
        day=today(),
        agent_id=agent_id,
        execution_id=execution_id,
        provider=provider,
        model=model,
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        estimated=used.estimated,
        cost_usd=cost.cost_usd(model, used, settings.llm_prices),
        status=status,
        error_code=error_code,
        duration_ms=duration_ms,
    )
    session.add(row)
    await session.flush()
    return row


_GROUP_COLUMNS: dict[str, Any] = {
    "agent": LLMUsage.agent_id,
    "provider": LLMUsage.provider,
    "day": LLMUsage.day,
    "model": LLMUsage.model,
}
_ROW_FIELDS = {"agent": "agent_id", "provider": "provider", "day": "day", "model": "model"}


def _filtered(
    stmt: Select[Any], since: date | None, until: date | None, agent_id: str | None, provider: str | None
) -> Select[Any]:
    if since is not None:
        stmt = stmt.where(LLMUsage.day >= since.isoformat())
    if until is not None:
        stmt = stmt.where(LLMUsage.day <= until.isoformat())
    if agent_id is not None:
        stmt = stmt.where(LLMUsage.agent_id == agent_id)
    if provider is not None:
        stmt = stmt.where(LLMUsage.provider == provider)
    return stmt


def _aggregates() -> list[Any]:
    return [
        func.count(LLMUsage.id),
        func.coalesce(func.sum(case((LLMUsage.status != "ok", 1), else_=0)), 0),
        func.coalesce(func.sum(LLMUsage.input_tokens), 0),
        func.coalesce(func.sum(LLMUsage.output_tokens), 0),
        func.coalesce(func.sum(LLMUsage.cost_usd), 0),
        func.coalesce(func.sum(case((LLMUsage.cost_usd.is_(None), 1), else_=0)), 0),
    ]


def _usage_row(values: Any, keys: dict[str, Any]) -> UsageRow:
    calls, failed, tokens_in, tokens_out, spent, unpriced = values
    return UsageRow(
        **keys,
        calls=int(calls),
        failed_calls=int(failed),
        input_tokens=int(tokens_in),
        output_tokens=int(tokens_out),
        cost_usd=Decimal(str(spent)).quantize(Decimal("0.000001")),
        unpriced_calls=int(unpriced),
    )


async def usage_report(
    *,
    session: AsyncSession,
    group_by: list[str],
    since: date | None = None,
    until: date | None = None,
    agent_id: str | None = None,
    provider: str | None = None,
    limit: int = 1000,
) -> tuple[list[UsageRow], UsageRow]:
    """Totals per group (any of agent, provider, day, model) and overall, newest day first."""
    columns = [_GROUP_COLUMNS[g] for g in group_by]
    stmt = _filtered(select(*columns, *_aggregates()), since, until, agent_id, provider)
    if columns:
        order = [c.desc() if g == "day" else c for g, c in zip(group_by, columns, strict=True)]
        stmt = stmt.group_by(*columns).order_by(*order).limit(limit)
    rows = []
    for result in (await session.execute(stmt)).all():
        keys = {_ROW_FIELDS[g]: result[i] for i, g in enumerate(group_by)}
        rows.append(_usage_row(result[len(group_by) :], keys))
    total_values = (await session.execute(_filtered(select(*_aggregates()), since, until, agent_id, provider))).one()
    return (rows if columns else []), _usage_row(total_values, {})


# --- budgets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetState:
    agent_id: str
    daily_usd: Decimal | None
    monthly_usd: Decimal | None
    source: str  # agent | default | none
    spent_today_usd: Decimal
    spent_month_usd: Decimal


async def _spent(session: AsyncSession, agent_id: str, since_day: str) -> Decimal:
    value = await session.scalar(
        select(func.coalesce(func.sum(LLMUsage.cost_usd), 0)).where(
            LLMUsage.agent_id == agent_id, LLMUsage.day >= since_day
        )
    )
    return Decimal(str(value or 0))


async def _limits(
    session: AsyncSession, settings: Settings, agent_id: str
) -> tuple[Decimal | None, Decimal | None, str]:
    """(daily, monthly, source) of the agent's budget: its own, else the default daily one, else none."""
    row = await session.get(LLMBudget, agent_id)
    if row is not None:
        return row.daily_usd, row.monthly_usd, "agent"
    if settings.llm_default_daily_budget_usd is not None:
        return Decimal(str(settings.llm_default_daily_budget_usd)), None, "default"
    return None, None, "none"


async def budget_state(*, session: AsyncSession, settings: Settings, agent_id: str) -> BudgetState:
    day = today()
    daily, monthly, source = await _limits(session, settings, agent_id)
    return BudgetState(
        agent_id=agent_id,
        daily_usd=daily,
        monthly_usd=monthly,
        source=source,
        spent_today_usd=await _spent(session, agent_id, day),
        spent_month_usd=await _spent(session, agent_id, day[:8] + "01"),
    )


async def set_budget(*, session: AsyncSession, agent_id: str, data: BudgetIn, actor_id: str | None) -> LLMBudget:
    await agents_service.get_agent(session=session, agent_id=agent_id)  # NotFound for an unknown agent
    row = await session.get(LLMBudget, agent_id)
    if row is None:
        row = LLMBudget(agent_id=agent_id)
        session.add(row)
    row.daily_usd, row.monthly_usd = data.daily_usd, data.monthly_usd
    row.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(actor_id) if actor_id else audit.Actor.system(),
        action="llm.budget.set",
        resource_type="agent",
        resource_id=agent_id,
        decision="done",
        details={
            "daily_usd": None if data.daily_usd is None else str(data.daily_usd),
            "monthly_usd": None if data.monthly_usd is None else str(data.monthly_usd),
        },
    )
    return row


async def delete_budget(*, session: AsyncSession, agent_id: str, actor_id: str | None) -> None:
    row = await session.get(LLMBudget, agent_id)
    if row is None:
        raise NotFound(f"Agent {agent_id!r} has no LLM budget.", code="LLM_BUDGET_NOT_FOUND")
    await session.delete(row)
    await audit.record(
        session=session,
        actor=audit.Actor.user(actor_id) if actor_id else audit.Actor.system(),
        action="llm.budget.delete",
        resource_type="agent",
        resource_id=agent_id,
        decision="done",
    )
    await session.flush()


def _usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.0001'))}"


async def check_budget(
    *,
    session: AsyncSession,
    settings: Settings,
    agent_id: str,
    model: str,
    input_tokens: int,
    max_output_tokens: int,
) -> Decimal | None:
    """Refuse (`BudgetExceeded`) a call whose worst-case cost would take the agent over a limit.

    The worst case is the estimated input tokens plus `max_output_tokens` at the model's price (an
    unpriced model counts as 0, so only a budget already spent refuses it). Returns that estimate.
    """
    daily, monthly, _source = await _limits(session, settings, agent_id)
    if daily is None and monthly is None:
        return None  # nothing to check: the spend (a sum over the agent's usage rows) is not read
    estimate = cost.cost_usd(model, Usage(input_tokens, max_output_tokens, estimated=True), settings.llm_prices)
    worst = estimate or Decimal(0)
    day = today()
    for period, limit, since_day in (("daily", daily, day), ("monthly", monthly, day[:8] + "01")):
        if limit is None:
            continue
        spent = await _spent(session, agent_id, since_day)
        if spent >= limit or spent + worst > limit:
            raise BudgetExceeded(
                f"The agent's {period} LLM budget of {_usd(limit)} would be exceeded: {_usd(spent)} spent, "
                f"this call may cost up to {_usd(worst)} ({model}). Raise the budget with "
                f"`atom-os llm budget {agent_id} --{period} USD` or PUT /api/llm/budgets/{agent_id}.",
                details={
                    "agent_id": agent_id,
                    "period": period,
                    "limit_usd": str(limit),
                    "spent_usd": str(spent),
                    "estimate_usd": str(worst),
                    "model": model,
                },
            )
    return estimate
