"""`atom-os agents ...`: the registry, status, confidence and promotion."""

from __future__ import annotations

import typer
from rich.table import Table

from atom.agents import service
from atom.agents.models import Agent, AgentStatus
from atom.agents.schemas import AgentConfig, AgentCreate
from atom.audit import service as audit
from atom.cli.caller import caller_id
from atom.cli.common import console, id_table, load_settings, run, session_scope
from atom.governance import service as governance
from atom.governance.maturity import MaturityLevel, MaturityThresholds
from atom.graduation import service as graduation
from atom.security import service as security
from atom.security.models import Role

app = typer.Typer(help="Agents: registry, status, confidence and promotion.", no_args_is_help=True)
CLI_ACTOR = audit.Actor.system()


def _agents_table(agents: list[Agent]) -> Table:
    table = id_table("id", "name", "category", "level", "confidence", "status")
    for a in agents:
        table.add_row(a.id, a.name, a.category, a.maturity_level, f"{a.confidence:.3f}", a.status)
    return table


@app.command()
def create(
    name: str,
    category: str = typer.Option("general"),
    description: str = typer.Option(""),
    specialty: str | None = typer.Option(None),
    model: str | None = typer.Option(None, help="LLM model the agent uses."),
    confidence: float | None = typer.Option(
        None, min=0, max=1, help="Starting confidence (default 0.3); above STUDENT it needs an approver."
    ),
    by: str | None = typer.Option(
        None, "--by", help="Approver creating an agent above STUDENT (default: the owner of ATOM_API_KEY)."
    ),
) -> None:
    """Register an agent: a STUDENT, unless an approver gives a higher starting confidence (a promotion)."""
    settings = load_settings()
    above_student = (
        confidence is not None
        and MaturityThresholds.from_settings(settings).level_for(confidence) is not MaturityLevel.STUDENT
    )

    async def body() -> list[Agent]:
        async with session_scope(settings) as session:
            actor = CLI_ACTOR
            if above_student:
                approver = await caller_id(
                    session=session, by=by, minimum=Role.APPROVER, doing="creating an agent above STUDENT"
                )
                actor = audit.Actor.user(approver)
            agent = await service.create_agent(
                session=session,
                agent_in=AgentCreate(
                    name=name,
                    category=category,
                    description=description,
                    specialty=specialty,
                    configuration=AgentConfig(model=model),
                    confidence=confidence,
                ),
                actor=actor,
                settings=settings,
                may_promote=above_student,
            )
            return [agent]

    console.print(_agents_table(run(body)))


@app.command("list")
def list_agents(
    status: AgentStatus | None = typer.Option(None), category: str | None = typer.Option(None), limit: int = 100
) -> None:
    """List agents."""
    settings = load_settings()

    async def body() -> list[Agent]:
        async with session_scope(settings) as session:
            agents, _ = await service.list_agents(
                session=session, limit=limit, cursor=None, status=status, category=category
            )
            return agents

    console.print(_agents_table(run(body)))


@app.command()
def show(agent: str = typer.Argument(..., help="Agent id or name.")) -> None:
    """Show an agent, its level history and what it may do."""
    settings = load_settings()

    async def body() -> None:
        async with session_scope(settings) as session:
            a = await service.resolve_ref(session=session, ref=agent)
            console.print(_agents_table([a]))
            history = await service.level_history(session=session, agent_id=a.id)
            if history:
                table = Table("when", "kind", "from", "to", "by", "reason", title="level changes")
                for c in history:
                    by = f"{c.actor_type}:{c.actor_id or '-'}"
                    table.add_row(
                        c.created_at.isoformat(timespec="seconds"), c.kind, c.from_level, c.to_level, by, c.reason
                    )
                console.print(table)
            perms = Table("action", "complexity", "manual", "automated", title="permissions (dry run)")
            for name, complexity, manual, automated in governance.dry_run(
                MaturityLevel(a.maturity_level), a.status, a.id
            ):
                if manual.reason_code == "UNKNOWN_ACTION":  # planned: nothing implements it yet
                    perms.add_row(name, str(complexity), "unavailable", "unavailable")
                else:
                    perms.add_row(name, str(complexity), manual.outcome.value, automated.outcome.value)
            console.print(perms)

    run(body)


def _set_status(agent: str, status: AgentStatus, reason: str | None) -> None:
    settings = load_settings()

    async def body() -> list[Agent]:
        async with session_scope(settings) as session:
            a = await service.resolve_ref(session=session, ref=agent)
            return [
                await service.set_status(session=session, agent_id=a.id, status=status, actor=CLI_ACTOR, reason=reason)
            ]

    console.print(_agents_table(run(body)))


@app.command()
def pause(agent: str, reason: str | None = typer.Option(None)) -> None:
    """Pause an agent: it performs nothing until resumed."""
    _set_status(agent, AgentStatus.PAUSED, reason)


@app.command()
def resume(agent: str, reason: str | None = typer.Option(None)) -> None:
    """Resume a paused or stopped agent."""
    _set_status(agent, AgentStatus.ACTIVE, reason)


@app.command()
def stop(agent: str, reason: str | None = typer.Option(None)) -> None:
    """Stop an agent."""
    _set_status(agent, AgentStatus.STOPPED, reason)


@app.command()
def promote(
    agent: str,
    to: MaturityLevel = typer.Option(..., "--to", help="The new level."),
    reason: str = typer.Option(..., help="Why (recorded in the audit log)."),
    by: str | None = typer.Option(
        None, "--by", help="Username of the approver promoting the agent (default: the owner of ATOM_API_KEY)."
    ),
    override: bool = typer.Option(False, help="Admin only: promote past the graduation gate (audited)."),
) -> None:
    """Promote an agent once readiness and the level's exam passed; confidence is raised to the new floor."""
    settings = load_settings()

    async def body() -> list[Agent]:
        async with session_scope(settings) as session:
            approver = await caller_id(session=session, by=by, minimum=Role.APPROVER, doing="promotion")
            user = await security.get_user(session=session, user_id=approver)
            return [
                await graduation.promote(
                    session=session,
                    settings=settings,
                    agent_ref=agent,
                    to_level=to,
                    actor=audit.Actor.user(approver),
                    reason=reason,
                    override=override,
                    actor_is_admin=Role(user.role).at_least(Role.ADMIN),
                )
            ]

    console.print(_agents_table(run(body)))


@app.command()
def confidence(agent: str, limit: int = 50) -> None:
    """Show an agent's confidence history (newest first)."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            a = await service.resolve_ref(session=session, ref=agent)
            events, _ = await service.confidence_history(session=session, agent_id=a.id, limit=limit, cursor=None)
        table = Table("when", "delta", "after", "source", "reason", title=f"{a.name}: confidence {a.confidence:.3f}")
        for e in events:
            table.add_row(
                e.created_at.isoformat(timespec="seconds"),
                f"{e.delta:+.3f}",
                f"{e.confidence_after:.3f}",
                e.source,
                e.reason,
            )
        return table

    console.print(run(body))


@app.command()
def readiness(agent: str, level: MaturityLevel | None = typer.Option(None, help="Default: the next level.")) -> None:
    """Graduation readiness: episodes, intervention rate, constitutional score, and each gap in words."""
    settings = load_settings()

    async def body() -> graduation.Readiness:
        async with session_scope(settings) as session:
            return await graduation.readiness(session=session, settings=settings, agent_ref=agent, target=level)

    report = run(body)
    c = report.criteria
    console.print(
        f"{report.agent_name}: {report.current_level} -> {report.target_level}, readiness {report.score:.0f}/100"
    )
    console.print(f"  episodes {report.episodes} (needs {c.min_episodes})")
    console.print(f"  intervention rate {report.intervention_rate:.2f} (at most {c.max_intervention_rate:.2f})")
    console.print(
        f"  constitutional score {report.constitutional_score:.2f} (at least {c.min_constitutional_score:.2f})"
    )
    if report.ready:
        console.print("[green]Ready[/]: take the exam (`atom-os agents exam`), then an approver may promote.")
    for gap in report.gaps:
        console.print(f"  - {gap}", highlight=False)


@app.command()
def exam(
    agent: str,
    level: MaturityLevel | None = typer.Option(None, help="Default: the next level."),
) -> None:
    """Replay the agent's edge-case episodes as a dry run at the level; passing means zero violations."""
    from atom.governance import catalogue as governance_catalogue

    settings = load_settings()

    async def body() -> tuple[bool, int, int, list[dict[str, object]]]:
        async with session_scope(settings) as session:
            result = await graduation.take_exam(
                session=session,
                agent_ref=agent,
                classify=governance_catalogue.current().classify,
                actor=CLI_ACTOR,
                target=level,
            )
            return result.passed, result.episodes, result.actions, result.violations

    passed, episodes, actions, violations = run(body)
    verdict = "[green]passed[/]" if passed else "[red]failed[/]"
    console.print(
        f"Exam {verdict}: {episodes} edge-case episodes, {actions} actions replayed, {len(violations)} violations"
    )
    for v in violations:
        console.print(f"  - {v.get('action')}: {v.get('why')}", highlight=False)
