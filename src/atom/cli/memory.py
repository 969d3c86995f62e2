"""`atom-os memory ...`: an agent's episodes, search with scores, export, forget, maintenance, re-embedding."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import typer
from rich.progress import Progress

from atom.audit import service as audit
from atom.cli.common import console, id_table, load_settings, open_database, run
from atom.config import Settings
from atom.db.session import Database
from atom.memory import lifecycle, retrieval, service
from atom.memory.runtime import Memory, build
from atom.memory.schemas import SearchMode

app = typer.Typer(help="Episodic memory: episodes, search, export, forget, maintenance.", no_args_is_help=True)
CLI_ACTOR = "cli"


@asynccontextmanager
async def _memory(settings: Settings) -> AsyncIterator[tuple[Database, Memory]]:
    async with open_database(settings) as db:
        yield db, await build(settings, db, search_index=False)  # one-shot: LanceDB searches directly


@app.command("list")
def list_episodes(
    agent: str = typer.Argument(..., help="Agent id or name."),
    limit: int = typer.Option(20, min=1, max=500),
    status: str | None = typer.Option(None, help="active, archived or consolidated."),
) -> None:
    """An agent's episodes, newest first."""
    settings = load_settings()

    async def body() -> None:
        async with open_database(settings) as db, db.session_scope() as s:
            agent_id = await service.require_agent(session=s, agent_ref=agent)
            rows, _ = await service.list_episodes(
                session=s, agent_id=agent_id, reader=None, status=status, since=None, limit=limit, cursor=None
            )
        table = id_table("id", "ended", "status", "segments", "decay", "title")
        for e in rows:
            table.add_row(
                e.id,
                e.ended_at.isoformat(timespec="minutes"),
                e.status,
                str(e.segment_count),
                f"{e.decay:.2f}",
                e.title[:60],
            )
        console.print(table)

    run(body)


@app.command()
def show(episode_id: str, reason: str = typer.Option("shown in the CLI", help="Kept in the access log.")) -> None:
    """One whole episode with its segments (sequential retrieval)."""
    settings = load_settings()

    async def body() -> None:
        async with _memory(settings) as (db, memory), db.session_scope() as s:
            found = await retrieval.sequential(
                session=s, memory=memory, episode_id=episode_id, actor=CLI_ACTOR, reason=reason
            )
        e = found.episode
        console.print(f"[bold]{e.title}[/] ({e.status}, {e.started_at.isoformat()} .. {e.ended_at.isoformat()})")
        for seg in found.segments:
            console.print(
                f"  {seg.occurred_at.isoformat(timespec='seconds')} {seg.kind:<13} {seg.role:<9} {seg.content}",
                highlight=False,
            )
        for act in found.canvas:
            console.print(
                f"  {act['at'][:19]} canvas        {act['actor']:<9} {act['action']} {act['kind']} "
                f"{act['title'] or act['canvas_id']} ({act['outcome']})",
                highlight=False,
            )

    run(body)


@app.command()
def search(
    agent: str,
    query: str,
    mode: SearchMode = typer.Option(SearchMode.SEMANTIC, help="semantic, contextual or temporal."),
    days: int | None = typer.Option(None, help="Time window (temporal: 1, 7, 30 or 90)."),
    limit: int = typer.Option(5, min=1, max=50),
    reason: str = typer.Option("searched in the CLI", help="Kept in the access log."),
) -> None:
    """Find episodes and show why each was recalled (its scores)."""
    settings = load_settings()

    async def body() -> None:
        async with _memory(settings) as (db, memory), db.session_scope() as s:
            agent_id = await service.require_agent(session=s, agent_ref=agent)
            found = await retrieval.search(
                session=s,
                memory=memory,
                agent_id=agent_id,
                mode=mode,
                query=query,
                days=days,
                limit=limit,
                actor=CLI_ACTOR,
                reason=reason,
            )
        table = id_table("id", "score", "why", "title")
        for r in found:
            why = ", ".join(f"{k}={v:.3f}" for k, v in r.why.items())
            table.add_row(r.episode.id, f"{r.score:.4f}", why, r.episode.title[:50])
        console.print(table)

    run(body)


@app.command()
def export(agent: str, out: Path | None = typer.Option(None, help="File to write (default: standard output).")) -> None:
    """An agent's memory as JSON lines (one episode with its segments per line)."""
    settings = load_settings()

    async def body() -> int:
        n = 0
        async with open_database(settings) as db, db.session_scope() as s:
            agent_id = await service.require_agent(session=s, agent_ref=agent)
            await service.log_access(
                session=s, actor=CLI_ACTOR, agent_id=agent_id, mode="export", query="", reason="export", scores={}
            )
            handle = out.open("w", encoding="utf-8") if out else sys.stdout
            try:
                async for line in service.export_lines(session=s, agent_id=agent_id, reader=None):
                    handle.write(line)
                    n += 1
            finally:
                if out:
                    handle.close()
        return n

    n = run(body)
    if out:
        console.print(f"{n} episodes written to {out}")


@app.command()
def forget(
    agent: str,
    episode: list[str] | None = typer.Option(None, "--episode", help="Only these episodes (repeatable)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Delete an agent's memory (rows and vectors); audited."""
    settings = load_settings()
    if not yes:
        typer.confirm(f"Delete {'the given episodes' if episode else 'all memory'} of {agent}?", abort=True)

    async def body() -> int:
        async with _memory(settings) as (db, memory), db.session_scope() as s:
            agent_id = await service.require_agent(session=s, agent_ref=agent)
            return await service.forget(
                session=s,
                memory=memory,
                agent_id=agent_id,
                episode_ids=episode or None,
                actor=audit.Actor.system(),
                reader=None,
            )

    console.print(f"{run(body)} episodes deleted")


async def _with_progress(db: Database, job_id: str, work: asyncio.Task[object], label: str) -> None:
    with Progress(console=console, transient=False) as bar:
        task = bar.add_task(label, total=None)
        while not work.done():
            async with db.session_scope() as s:
                job = await lifecycle.get_job(session=s, job_id=job_id)
            bar.update(task, total=job.total or None, completed=job.done)
            await asyncio.wait({work}, timeout=0.2)
        await work


@app.command()
def maintain(apply: bool = typer.Option(False, "--apply", help="Change memory (default: a dry-run report).")) -> None:
    """Decay, archive and consolidate episodes; without --apply only report what would change."""
    settings = load_settings()

    async def body() -> dict[str, object]:
        async with _memory(settings) as (db, memory):
            async with db.session_scope() as s:
                job = await lifecycle.start_job(session=s, kind="maintain", dry_run=not apply, created_by=None)
            work = asyncio.create_task(lifecycle.maintain(db=db, memory=memory, job_id=job.id, dry_run=not apply))
            await _with_progress(db, job.id, work, "maintenance")
            return dict(work.result())

    report = run(body)
    summary = {k: len(v) for k, v in report.items() if isinstance(v, list)}
    console.print(("applied: " if apply else "dry run: ") + json.dumps(summary))
    console.print_json(json.dumps(report, default=str))


@app.command()
def reembed(agent: str | None = typer.Option(None, help="Only this agent's episodes.")) -> None:
    """Re-embed episodes with the configured model, with progress."""
    settings = load_settings()

    async def body() -> int:
        async with _memory(settings) as (db, memory):
            async with db.session_scope() as s:
                agent_id = await service.require_agent(session=s, agent_ref=agent) if agent else None
                job = await lifecycle.start_job(session=s, kind="reembed", dry_run=False, created_by=None)
            work = asyncio.create_task(lifecycle.reembed(db=db, memory=memory, job_id=job.id, agent_id=agent_id))
            await _with_progress(db, job.id, work, f"re-embedding with {memory.embedder.model_id}")
            return int(work.result())

    console.print(f"{run(body)} episodes re-embedded")
