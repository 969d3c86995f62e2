"""`atom-os skills ...`: import community skills, read their findings, trust or ban them, run them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from atom.audit import service as audit
from atom.cli.common import console, fail, load_settings, open_database, run, session_scope
from atom.llm.gateway import LLMGateway
from atom.skills import bundle, review, runs, service
from atom.skills.models import Skill, SkillState, SkillVersion

app = typer.Typer(help="Community skills: import, scan, trust, ban, run.", no_args_is_help=True)
CLI_ACTOR = audit.Actor.system()
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="A skill folder, a tree of skill folders, a .zip or a SKILL.md."),
    update: bool = typer.Option(False, help="Store skills already installed as new (Untrusted) versions."),
) -> None:
    """Parse, scan and store every skill found (up to 6 levels down). Each is Untrusted until trusted."""
    settings = load_settings()

    async def body() -> list[service.ImportOutcome]:
        found = bundle.read_source(path)
        async with session_scope(settings) as session:
            return await service.import_bundles(session=session, bundles=found, actor=CLI_ACTOR, update=update)

    outcomes = run(body)
    table = Table("name", "status", "verdict", "note")
    counts: dict[str, int] = {}
    for o in outcomes:
        label = o.verdict or ("scan failed" if o.status != "error" else "-")
        counts[label] = counts.get(label, 0) + 1
        table.add_row(o.name, o.status, label, escape(o.message or ""))
    console.print(table)
    console.print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@app.command("list")
def list_(state: SkillState | None = typer.Option(None), limit: int = typer.Option(100, min=1, max=500)) -> None:
    """Installed skills with their state and the latest version's verdict."""
    settings = load_settings()

    async def body() -> list[tuple[str, str, str, str, str]]:
        async with session_scope(settings) as session:
            skills, _ = await service.list_skills(session=session, limit=limit, cursor=None, state=state)
            latest = await service.latest_versions(session=session, skills=skills)
            rows = []
            for s in skills:
                v = latest.get(s.id)
                pending = "update pending" if s.active_version_id and s.active_version_id != s.latest_version_id else ""
                rows.append((s.name, s.state, v.kind if v else "", (v.verdict or "scan failed") if v else "", pending))
            return rows

    table = Table("name", "state", "kind", "verdict", "")
    for row in run(body):
        table.add_row(*row)
    console.print(table)


@app.command()
def show(ref: str) -> None:
    """A skill's latest version: content hash, warnings and every finding with its file and line."""
    settings = load_settings()

    async def body() -> tuple[Skill, SkillVersion]:
        async with session_scope(settings) as session:
            skill = await service.get_skill(session=session, ref=ref)
            return skill, await service.get_version(session=session, version_id=skill.latest_version_id)

    skill, version = run(body)
    _print_version(skill, version)


def _print_version(s: Skill, v: SkillVersion) -> None:
    console.print(f"[bold]{s.name}[/] ({s.state}) version {v.number} {v.kind}: {escape(v.description)}", soft_wrap=True)
    console.print(f"content hash: {v.content_hash}  verdict: {v.verdict or 'scan failed: ' + str(v.scan_error)}")
    for w in v.warnings:
        console.print(f"  warning {w['code']}: {escape(w['message'])}", highlight=False, soft_wrap=True)
    console.print(f"{len(v.findings)} findings:")
    for f in v.findings:
        style = _SEVERITY_STYLE.get(f["severity"], "")
        where = f"{f['file']}:{f['line']}" if f.get("line") else f["file"]
        console.print(
            f"  [{style}]{f['severity']:<8}[/] {f['rule']} {escape(where)}  {escape(f['excerpt'])}", soft_wrap=True
        )


@app.command()
def scan(
    ref: str,
    llm: bool = typer.Option(False, "--llm", help="Also have the configured LLM provider review it (merged)."),
    model: str | None = typer.Option(None, help="With --llm: the model to ask (default: the gateway's routing)."),
) -> None:
    """Scan the latest version again; with --llm, an LLM review too. Exits 1 when the scan or review failed."""
    settings = load_settings()

    async def body() -> tuple[Skill, SkillVersion, review.ReviewOutcome | None]:
        outcome = None
        if llm:
            async with open_database(settings) as db:
                gateway = LLMGateway(db, settings)
                try:
                    outcome = await review.review_latest(db=db, llm=gateway, ref=ref, actor=CLI_ACTOR, model=model)
                finally:
                    await gateway.aclose()
                async with db.session_scope() as session:
                    skill, version = await service.latest(session=session, ref=ref)
                    return skill, version, outcome
        async with session_scope(settings) as session:
            version = await service.rescan(session=session, ref=ref, actor=CLI_ACTOR)
            return await service.get_skill(session=session, ref=ref), version, None

    skill, version, outcome = run(body)
    _print_version(skill, version)
    if outcome is not None and outcome.status == "completed":
        who = "/".join(p for p in (outcome.provider, outcome.model) if p)
        console.print(
            f"LLM review by {escape(who)}: {outcome.llm_verdict}, {outcome.findings} findings", highlight=False
        )
    if version.verdict is None:
        fail(version.scan_error or "the scan failed")


@app.command()
def trust(
    ref: str,
    content_hash: str = typer.Option(..., "--hash", help="The content hash `skills show` printed: what you reviewed."),
) -> None:
    """Make the latest version Active (it must have a completed, non-malicious scan)."""
    settings = load_settings()

    async def body() -> str:
        async with session_scope(settings) as session:
            skill = await service.trust(session=session, ref=ref, content_hash_seen=content_hash, actor=CLI_ACTOR)
            return skill.name

    console.print(f"{run(body)} is active.")


@app.command()
def ban(ref: str, reason: str = typer.Option(..., help="Why (kept in the audit log).")) -> None:
    """Ban a skill: no version of it is offered or run again."""
    settings = load_settings()

    async def body() -> str:
        async with session_scope(settings) as session:
            return (await service.ban(session=session, ref=ref, actor=CLI_ACTOR, reason=reason)).name

    console.print(f"{run(body)} is banned.")


@app.command("run")
def run_(
    ref: str,
    args: list[str] = typer.Argument(None, help="Arguments for the script."),
    script: str | None = typer.Option(None, help="Which bundled script (when there are several)."),
    agent: str | None = typer.Option(None, help="Run as this agent id, under governance."),
    timeout: float | None = typer.Option(None, min=0.1, max=300, help="Wall-clock limit in seconds."),
) -> None:
    """Run a trusted code skill in the sandbox."""
    settings = load_settings()

    async def body() -> runs.RunOutcome:
        async with session_scope(settings) as session:
            return await runs.run_skill(
                session=session,
                settings=settings,
                ref=ref,
                actor=CLI_ACTOR,
                agent_id=agent,
                script=script,
                args=list(args or []),
                timeout_s=timeout,
            )

    outcome = run(body)
    if outcome.denied:
        assert outcome.decision is not None
        fail(f"governance denied the run: {outcome.decision.reason}")
    assert outcome.result is not None
    result = outcome.result
    console.print(result.stdout, end="", markup=False, highlight=False)
    if result.stderr:
        console.print(result.stderr, end="", markup=False, highlight=False, style="red")
    if not result.ok:
        fail(f"the skill failed (exit {result.exit_code}, {result.violation or 'error'})")
