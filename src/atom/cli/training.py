"""`atom-os trigger`, `atom-os proposals ...`, `atom-os training ...`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.cli import training_scenarios
from atom.cli.caller import caller_id
from atom.cli.common import console, fail, id_table, load_settings, open_database, run, session_scope
from atom.governance.policy import TriggerKind
from atom.security.models import Role
from atom.training import interceptor, proposals, scenario_runs
from atom.training import sessions as training_sessions
from atom.training.executor import RunResult
from atom.training.models import AgentProposal, ProposalKind, ProposalStatus, TrainingStatus
from atom.training.plan import Plan

proposals_app = typer.Typer(help="Proposals waiting for a person: list, show, approve, reject.", no_args_is_help=True)
training_app = typer.Typer(help="Training sessions of STUDENT agents.", no_args_is_help=True)


def _read_plan(path: Path) -> Plan:
    try:
        raw = json.loads(path.read_text())
        return Plan.model_validate({"steps": raw} if isinstance(raw, list) else raw)
    except FileNotFoundError:
        fail(f"No plan file at {path}.")
    except json.JSONDecodeError as exc:
        fail(f"{path} is not JSON: {exc}.")
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}.")


async def _approver_id(session: AsyncSession, username: str | None, doing: str = "deciding proposals") -> str:
    return await caller_id(session=session, by=username, minimum=Role.APPROVER, doing=doing)


BY_HELP = "Username of the approver (default: the owner of ATOM_API_KEY, like the API's caller)."
RESULT_WIDTH = 300


def _print_steps(run_result: RunResult) -> None:
    """One line per step: its status, and its result (or why it failed)."""
    for step in run_result.steps:
        line = f"  step {step.index + 1} {step.action}: {step.status}"
        if step.error:
            line += f" ({step.reason_code + ': ' if step.reason_code else ''}{step.error})"
        elif step.output is not None:
            shown = json.dumps(step.output, default=str, ensure_ascii=False)
            line += f" -> {shown if len(shown) <= RESULT_WIDTH else shown[:RESULT_WIDTH] + '...'}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if run_result.error and not run_result.steps:
        console.print(f"  run failed: {run_result.error}", markup=False, highlight=False, soft_wrap=True)


async def _agent_names(session: AsyncSession, agent_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for agent_id in agent_ids:
        agent = await agents_service.find_agent(session=session, agent_id=agent_id)
        names[agent_id] = agent.name if agent is not None else f"(deleted {agent_id})"
    return names


def trigger(
    agent: str = typer.Argument(..., help="Agent id or name."),
    plan: Path = typer.Option(..., "--plan", help='JSON file: {"steps": [{"action": ..., "params": {...}}]}.'),
    kind: TriggerKind = typer.Option(TriggerKind.AUTOMATED, help="automated (routed by maturity) or manual."),
    source: str = typer.Option("cli", help="What fired it: schedule, webhook, event, workflow, agent, cli."),
) -> None:
    """Fire a trigger: the interceptor blocks, proposes, supervises or runs it by the agent's maturity."""
    settings = load_settings()
    the_plan = _read_plan(plan)

    async def body() -> interceptor.RoutingResult:
        async with open_database(settings) as db:
            async with db.session_scope() as session:
                agent_id = (await agents_service.resolve_ref(session=session, ref=agent)).id
            return await interceptor.intercept(
                db=db,
                settings=settings,
                agent_id=agent_id,
                trigger=interceptor.TriggerInfo(source=source, kind=kind),
                plan=the_plan,
            )

    result = run(body)
    console.print(f"[bold]{result.route.value}[/] ({result.agent_level.value}): {result.reason}")
    if result.proposal_id:
        console.print(f"proposal {result.proposal_id}: `atom-os proposals show {result.proposal_id}`")
    if result.supervision_session_id:
        console.print(
            f"supervision session {result.supervision_session_id}: `atom-os supervise {result.supervision_session_id}`"
        )
    if result.extra.get("estimate_hours"):
        low, high = result.extra["range"]
        console.print(f"training estimate {result.extra['estimate_hours']} h (range {low}-{high} h)")
    if result.run is not None:
        _print_steps(result.run)
        raise typer.Exit(0 if result.run.ok else 1)


@proposals_app.command("list")
def list_proposals(
    status: ProposalStatus | None = typer.Option(ProposalStatus.PENDING),
    kind: ProposalKind | None = typer.Option(None),
    limit: int = 50,
) -> None:
    """List proposals (pending by default)."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            rows, _ = await proposals.list_proposals(
                session=session, status=status, kind=kind, agent_id=None, limit=limit, cursor=None
            )
            names = await _agent_names(session, {p.agent_id for p in rows})
        table = id_table("id", "agent", "kind", "status", "source", "steps", "expires")
        for p in rows:
            table.add_row(
                p.id,
                names[p.agent_id],
                p.kind,
                p.status,
                p.source,
                str(len(p.plan)),
                p.expires_at.isoformat(timespec="minutes"),
            )
        return table

    console.print(run(body))


@proposals_app.command()
def show(proposal_id: str) -> None:
    """Show a proposal's exact plan and its hash."""
    settings = load_settings()

    async def body() -> tuple[AgentProposal, str]:
        async with session_scope(settings) as session:
            proposal = await proposals.get(session=session, proposal_id=proposal_id)
            names = await _agent_names(session, {proposal.agent_id})
            return proposal, names[proposal.agent_id]

    p, agent_name = run(body)
    console.print(f"[bold]{p.kind} proposal {p.id}[/] for agent {agent_name}: {p.status}")
    console.print(f"plan hash {p.plan_hash}{' (modified)' if p.modified else ''}", markup=False, highlight=False)
    console.print(f"expires {p.expires_at.isoformat(timespec='minutes')}")
    if p.estimate_hours is not None:
        console.print(f"training estimate {p.estimate_hours} h ({p.estimate_low_hours}-{p.estimate_high_hours} h)")
    console.print_json(json.dumps(p.plan))
    if p.status == ProposalStatus.PENDING.value:
        console.print(
            f"approve this plan: atom-os proposals approve {p.id} --hash {p.plan_hash}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if p.error:
        console.print(f"[red]error:[/] {p.error}")


@proposals_app.command()
def approve(
    proposal_id: str,
    plan_hash: str = typer.Option(
        ..., "--hash", help="The plan hash `proposals show` printed: the approval holds only for that plan."
    ),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
    plan: Path | None = typer.Option(
        None, "--plan", help="Approve a modified plan from this JSON file instead (recorded as a correction)."
    ),
    reason: str | None = typer.Option(None),
) -> None:
    """Approve the plan you saw (its --hash): it executes now, through governance."""
    settings = load_settings()
    modified = _read_plan(plan) if plan else None

    async def body() -> proposals.Approval:
        async with open_database(settings) as db:
            async with db.session_scope() as session:
                approver = await _approver_id(session, by)
            return await proposals.approve(
                db=db,
                settings=settings,
                proposal_id=proposal_id,
                approver_id=approver,
                seen_hash=plan_hash,
                modified_plan=modified,
                reason=reason,
            )

    approval = run(body)
    console.print(f"proposal {proposal_id}: [bold]{approval.proposal.status}[/]")
    if approval.training_id:
        console.print(f"training session {approval.training_id} scheduled")
    if approval.proposal.modified:
        console.print(f"plan corrected: new hash {approval.proposal.plan_hash}", markup=False, highlight=False)
    if approval.run is not None:
        _print_steps(approval.run)
        raise typer.Exit(0 if approval.run.ok else 1)


@proposals_app.command()
def reject(
    proposal_id: str, reason: str = typer.Option(...), by: str | None = typer.Option(None, "--by", help=BY_HELP)
) -> None:
    """Reject a proposal (its agent loses confidence)."""
    settings = load_settings()

    async def body() -> None:
        async with session_scope(settings) as session:
            approver = await _approver_id(session, by)
            await proposals.reject(
                session=session, proposal_id=proposal_id, approver_id=approver, reason=reason, settings=settings
            )

    run(body)
    console.print(f"proposal {proposal_id} rejected")


@training_app.command("list")
def list_training(status: TrainingStatus | None = typer.Option(None), limit: int = 50) -> None:
    """List training sessions."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            rows, _ = await training_sessions.list_sessions(
                session=session, status=status, agent_id=None, limit=limit, cursor=None
            )
            names = await _agent_names(session, {t.agent_id for t in rows})
        table = id_table("id", "agent", "category", "status", "estimate h", "override h", "performance")
        for t in rows:
            override_h = f"{t.override_hours:g}" if t.override_hours else ""
            score = f"{t.performance:.2f}" if t.performance is not None else ""
            table.add_row(t.id, names[t.agent_id], t.category, t.status, f"{t.estimate_hours:g}", override_h, score)
        return table

    console.print(run(body))


@training_app.command()
def complete(
    training_id: str,
    performance: float = typer.Option(..., min=0, max=1, help="Score 0-1."),
    hours: float | None = typer.Option(None, min=0.01, help="How long it took (default: since scheduled)."),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
) -> None:
    """Record a completed training; confidence moves by the performance band."""
    settings = load_settings()

    async def body() -> None:
        async with open_database(settings) as db:
            async with db.session_scope() as session:
                approver = await _approver_id(session, by)
                training = await training_sessions.complete(
                    session=session,
                    training_id=training_id,
                    performance=performance,
                    duration_hours=hours,
                    actor=audit.Actor.user(approver),
                    settings=settings,
                )
            await scenario_runs.auto_promote(
                db=db, settings=settings, agent_id=training.agent_id, moment="training.completed"
            )

    run(body)
    delta = training_sessions.performance_delta(performance, settings)
    console.print(f"training {training_id} completed (confidence {delta:+.2f})")


@training_app.command()
def override(
    training_id: str,
    hours: float = typer.Option(..., min=0.01),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
) -> None:
    """Replace the estimated duration."""
    settings = load_settings()

    async def body() -> None:
        async with session_scope(settings) as session:
            approver = await _approver_id(session, by)
            await training_sessions.override(
                session=session, training_id=training_id, hours=hours, actor=audit.Actor.user(approver)
            )

    run(body)
    console.print(f"training {training_id}: {hours:g} h")


# Scenarios and scored runs (cli/training_scenarios.py, docs/training.md).
training_app.command("load-scenarios")(training_scenarios.load_scenarios)
training_app.command("scenarios")(training_scenarios.list_scenarios)
training_app.command("run")(training_scenarios.run_session)
training_app.command("show")(training_scenarios.show)
training_app.command("score")(training_scenarios.score)
