"""`atom-os graduation ...`: the constitutional rule set (readiness and exams: `atom-os agents readiness|exam`)."""

from __future__ import annotations

from pathlib import Path

import typer

from atom.audit import service as audit
from atom.cli.common import console, fail, load_settings, run, session_scope
from atom.graduation import service as graduation

app = typer.Typer(help="Graduation: the constitutional rule set agents are scored against.", no_args_is_help=True)


@app.command("load-rules")
def load_rules(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Store FILE (YAML) as the new version of the rule set; a rule that does not compile is refused."""
    settings = load_settings()
    source = file.read_text(encoding="utf-8", errors="strict")

    async def body() -> tuple[int, list[str]]:
        async with session_scope(settings) as session:
            row = await graduation.save_rules(session=session, source=source, actor=audit.Actor.system())
            return row.version, row.rule_ids

    version, ids = run(body)
    console.print(f"Rule set version {version} in force: {len(ids)} rules ({', '.join(ids) or 'none'}).")


@app.command("rules")
def show_rules() -> None:
    """Print the rule set in force."""
    settings = load_settings()

    async def body() -> tuple[int, str] | None:
        async with session_scope(settings) as session:
            versions = await graduation.rule_versions(session=session)
            return (versions[0].version, versions[0].source) if versions else None

    current = run(body)
    if current is None:
        fail("No rule set yet: every action satisfies the constitution until one is loaded (load-rules FILE).", 1)
    console.print(f"# version {current[0]}", highlight=False)
    console.print(current[1], markup=False, highlight=False)
