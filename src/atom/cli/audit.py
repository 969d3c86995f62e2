"""`atom-os audit verify|list`."""

from __future__ import annotations

import typer
from rich.table import Table

from atom.audit import service
from atom.audit.schemas import ChainVerification
from atom.cli.common import console, fail, load_settings, run, session_scope

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command()
def verify() -> None:
    """Check every link of the audit chain; exit 1 naming the first broken record."""
    settings = load_settings()

    async def body() -> ChainVerification:
        async with session_scope(settings) as session:
            return await service.verify_chain(session=session)

    result = run(body)
    if not result.ok:
        fail(
            f"audit chain broken at record seq {result.first_broken_seq}"
            f"{f' (id {result.first_broken_id})' if result.first_broken_id else ''}: {result.problem}. "
            f"{result.checked} records before it are intact."
        )
    console.print(f"[green]Audit chain intact:[/] {result.checked} records.")


@app.command("list")
def list_events(
    actor: str | None = typer.Option(None, help="Actor id (user or agent)."),
    action: str | None = typer.Option(None, help="Action, e.g. governance.check."),
    resource: str | None = typer.Option(None, help="Resource id."),
    decision: str | None = typer.Option(None, help="Decision, e.g. denied."),
    limit: int = typer.Option(50, min=1, max=500),
) -> None:
    """Show the newest audit records."""
    settings = load_settings()
    filters = service.AuditFilter(actor_id=actor, action=action, resource_id=resource, decision=decision)

    async def body() -> Table:
        async with session_scope(settings) as session:
            events, _ = await service.list_events(session=session, filters=filters, limit=limit, cursor=None)
        table = Table("seq", "time", "actor", "action", "resource", "decision", "reason")
        for e in events:
            table.add_row(
                str(e.seq),
                e.created_at.isoformat(timespec="seconds"),
                f"{e.actor_type}:{e.actor_id or '-'}",
                e.action,
                f"{e.resource_type or ''}:{e.resource_id or ''}",
                e.decision or "",
                (e.reason or "")[:60],
            )
        return table

    console.print(run(body))
