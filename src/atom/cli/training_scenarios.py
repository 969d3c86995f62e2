"""`atom-os training load-scenarios|scenarios|run|show|score`: training scenarios and scored runs.

`run` asks the running server (API key, like `atom-os workflows run`): the agent runs there, with the
server's LLM providers and tools, and the command follows the session's progress with a bar. The
others work on the local database, like the rest of `atom-os training`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from atom.audit import service as audit
from atom.cli.caller import caller_id
from atom.cli.common import console, err_console, fail, id_table, load_settings, open_database, run, session_scope
from atom.cli.workflows import KeyOption, UrlOption, api
from atom.errors import InvalidInput
from atom.registries import ensure_registries
from atom.security.models import Role
from atom.training import scenario_runs, scenarios
from atom.training import sessions as training_sessions
from atom.training.scenario_schemas import TrainingRunRead

POLL_S = 0.5
RUNNING, COMPLETED = "running", "completed"  # training session statuses, as the API answers them
BY_HELP = "Username of the approver (default: the owner of ATOM_API_KEY)."


def load_scenarios(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
) -> None:
    """Store every scenario of FILE (YAML) as its next version, or none if one is invalid."""
    settings = load_settings()
    source = file.read_text(encoding="utf-8", errors="strict")
    ensure_registries()  # the tools a scenario names are checked against this process's registry
    try:
        parsed = scenarios.parse_file(source)
    except InvalidInput as exc:  # every field, with its line
        for problem in exc.details.get("fields", []):
            where = f"line {problem['line']}: " if problem.get("line") else ""
            err_console.print(f"  {where}[bold]{problem['field']}[/]: {problem['message']}", highlight=False)
        fail(f"{file}: nothing stored.")

    async def body() -> list[tuple[str, int, str]]:
        async with session_scope(settings) as session:
            who = await caller_id(session=session, by=by, minimum=Role.APPROVER, doing="loading training scenarios")
            rows = await scenarios.save_all(session=session, scenarios=parsed, actor=audit.Actor.user(who))
            return [(r.name, r.version, r.category) for r in rows]

    saved = run(body)
    for name, version, category in saved:
        console.print(f"{name} v{version} ({category})", highlight=False)


def list_scenarios(category: str | None = typer.Option(None, help="Only this agent category.")) -> None:
    """The scenarios in force (the newest version of each)."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            rows = await scenarios.current(session=session, category=category)
        table = Table("name", "version", "category", "tools", "scored by")
        for r in rows:
            measures = ", ".join(k for k in ("rules", "reference", "judge") if r.expect.get(k))
            table.add_row(r.name, str(r.version), r.category, ", ".join(r.tools), measures)
        return table

    console.print(run(body))


def _show(row: dict[str, Any]) -> None:
    score = f"{row['performance']:.2f} by {row['scored_by']}" if row["performance"] is not None else "not scored"
    console.print(
        f"training {row['id']}: [bold]{row['status']}[/] {row['progress_done']}/{row['progress_total']}, {score}",
        highlight=False,
    )
    table = id_table("scenario", "score", "measures", "recorded calls", "note", title=None)
    for result in row["results"] or []:
        measures = ", ".join(f"{k} {v['score']:.2f}" for k, v in (result.get("measures") or {}).items())
        score_text = f"{result['score']:.2f}" if "score" in result else "-"
        note = result.get("error") or result.get("note") or ""
        table.add_row(result["scenario"], score_text, measures, str(result.get("recorded", 0)), note[:120])
    if row["results"]:
        console.print(table)
    if row["run_error"]:
        console.print(f"[red]run failed[/]: {row['run_error']}", highlight=False, soft_wrap=True)


def show(training_id: str) -> None:
    """A training session's scenario run: progress, per-scenario scores, the error if it failed."""
    settings = load_settings()

    async def body() -> dict[str, Any]:
        async with session_scope(settings) as session:
            row = await training_sessions.get(session=session, training_id=training_id)
            return TrainingRunRead.model_validate(row).model_dump(mode="json")

    _show(run(body))


def run_session(
    training_id: str,
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Follow the progress until the run ends."),
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Run the session's category scenarios as scored dry runs (on the server); exit 0 once scored."""
    with api(url, key) as client:
        detail: dict[str, Any] = client.post(f"/api/training/{training_id}/run")
        console.print(f"training {training_id}: {detail['progress_total']} scenarios", highlight=False)
        if not watch:
            return
        columns = (TextColumn("{task.fields[scenario]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        progress = Progress(*columns, console=console)
        with progress:
            bar = progress.add_task("run", total=detail["progress_total"], scenario="")
            while detail["status"] == RUNNING:
                progress.update(bar, completed=detail["progress_done"], scenario=detail["current_scenario"] or "")
                time.sleep(POLL_S)
                detail = client.get(f"/api/training/{training_id}")
            progress.update(bar, completed=detail["progress_done"], scenario="")
    _show(detail)
    raise typer.Exit(0 if detail["status"] == COMPLETED else 1)


def score(
    training_id: str,
    performance: float = typer.Option(..., min=0, max=1, help="The score in force, 0-1."),
    reason: str = typer.Option(..., help="Why (recorded in the audit log)."),
    by: str | None = typer.Option(None, "--by", help=BY_HELP),
) -> None:
    """Override a completed session's score; confidence moves by the difference of the two bands."""
    settings = load_settings()

    async def body() -> dict[str, Any]:
        async with open_database(settings) as db:
            async with db.session_scope() as session:
                who = await caller_id(session=session, by=by, minimum=Role.APPROVER, doing="overriding a score")
                training = await training_sessions.override_score(
                    session=session,
                    training_id=training_id,
                    performance=performance,
                    reason=reason,
                    actor=audit.Actor.user(who),
                    settings=settings,
                )
                shown = TrainingRunRead.model_validate(training).model_dump(mode="json")
            await scenario_runs.auto_promote(
                db=db, settings=settings, agent_id=training.agent_id, moment="training.overridden"
            )
            return shown

    _show(run(body))
