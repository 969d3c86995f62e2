"""`atom-os governance actions|check`."""

from __future__ import annotations

import typer
from rich.table import Table

from atom.agents import service as agents_service
from atom.cli.common import console, load_settings, run, session_scope
from atom.governance import service
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import Decision, GovernanceContext, TriggerKind

app = typer.Typer(help="The action catalogue and governance decisions.", no_args_is_help=True)


@app.command()
def actions() -> None:
    """List every catalogued action: its complexity, the level it needs and what implements it (planned: nothing
    yet, so governance denies it)."""
    table = Table("action", "complexity", "needs", "implemented by", "source")
    for spec in service.actions():
        needs = MaturityLevel.for_complexity(spec.complexity).value
        table.add_row(spec.name, str(spec.complexity), needs, spec.implemented_by, spec.source)
    console.print(table)


@app.command()
def check(
    agent: str,
    action: str,
    trigger: TriggerKind = typer.Option(TriggerKind.MANUAL, help="manual or automated."),
) -> None:
    """Ask governance whether AGENT may perform ACTION (audited like any decision)."""
    settings = load_settings()

    async def body() -> Decision:
        async with session_scope(settings) as session:
            a = await agents_service.resolve_ref(session=session, ref=agent)
            return await service.check(
                session=session,
                agent_id=a.id,
                action=action,
                context=GovernanceContext(trigger=trigger, source="cli"),
                settings=settings,
            )

    decision = run(body)
    colour = "green" if decision.allowed else "red"
    console.print(f"[{colour}]{decision.outcome.value}[/] {decision.reason_code}: {decision.reason}")
    raise typer.Exit(0 if decision.allowed else 1)
