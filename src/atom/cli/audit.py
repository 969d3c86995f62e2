"""`atom-os audit verify|checkpoint|export-checkpoints|list`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from atom.audit import checkpoints as checkpoint_store
from atom.audit import service
from atom.audit.checkpoints import Checkpoint
from atom.audit.schemas import ChainVerification
from atom.cli.common import console, fail, load_settings, run, session_scope

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command()
def verify(
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints", help="Also hold the chain against an exported checkpoint file (a copy kept elsewhere)."
    ),
) -> None:
    """Check every link of the chain and every signed checkpoint; exit 1 naming what broke.

    When the chain holds, its head is signed as a new checkpoint (audit-checkpoints.jsonl in the data directory).
    """
    settings = load_settings()

    async def body() -> tuple[ChainVerification, Checkpoint | None]:
        async with session_scope(settings) as session:
            return await service.verify_and_checkpoint(session=session, settings=settings, extra=checkpoints)

    result, written = run(body)
    if not result.ok:
        where = f"record seq {result.first_broken_seq}" if result.first_broken_seq is not None else "the checkpoints"
        fail(
            f"audit chain broken at {where}"
            f"{f' (id {result.first_broken_id})' if result.first_broken_id else ''}: {result.problem}. "
            + (
                f"The rows themselves link up ({result.checked} records): the chain was rewritten after that "
                "checkpoint was signed."
                if result.broken_checkpoint is not None
                else f"{result.checked} records before it are intact."
            )
        )
    console.print(
        f"[green]Audit chain intact:[/] {result.checked} records; "
        f"{result.checkpoints_checked} signed checkpoint(s) hold.",
        highlight=False,
    )
    if written is not None:
        console.print(
            f"Chain head seq {written.seq} signed in {checkpoint_store.path(settings)}.",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def checkpoint() -> None:
    """Verify the chain, then sign its head as a checkpoint (refused when the chain does not verify)."""
    settings = load_settings()

    async def body() -> tuple[ChainVerification, Checkpoint | None]:
        async with session_scope(settings) as session:
            return await service.verify_and_checkpoint(session=session, settings=settings)

    result, written = run(body)
    if not result.ok:
        fail(f"not signing a broken chain: {result.problem} (run `atom-os audit verify`).")
    if written is None:
        console.print("The audit chain is empty: nothing to sign yet.")
        return
    console.print(
        f"Checkpoint signed: seq {written.seq}, hash {written.hash} ({checkpoint_store.path(settings)}).",
        highlight=False,
        soft_wrap=True,
    )


@app.command("export-checkpoints")
def export_checkpoints(
    out: Path | None = typer.Option(None, "--out", help="Write to this file (mode 0600) instead of stdout."),
) -> None:
    """Export the signed checkpoints, to keep a copy outside this machine (`verify --checkpoints` reads it)."""
    settings = load_settings()
    source = checkpoint_store.path(settings)
    content = source.read_text() if source.exists() else ""
    if out is None:
        typer.echo(content, nl=False)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    console.print(f"{len(content.splitlines())} checkpoints written to {out}.", highlight=False)


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
