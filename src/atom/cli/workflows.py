"""`atom-os workflows ...`: write, validate, schedule, run and watch workflows (docs/workflows.md).

Every command talks to the running server's API (`--url`, default ATOM_HOST:ATOM_PORT) with an API key
(`--key` or ATOM_API_KEY), so what it does is authorised, audited and governed like any API call.
`validate` also checks the file locally first, so a typo is reported even without a server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from atom.cli.common import console, err_console, fail, id_table, load_settings
from atom.workflows.definition import DefinitionError, detect_format, parse, topological_order

app = typer.Typer(
    help="Workflows: validate, create, update, list, show, delete, run (with live progress), runs, "
    "cancel, retry, approve and reject approval steps.",
    no_args_is_help=True,
)

KeyOption = Annotated[
    str | None,
    typer.Option("--key", envvar="ATOM_API_KEY", help="An API key (operator to change and run, viewer to read)."),
]
UrlOption = Annotated[str | None, typer.Option("--url", help="Server URL (default: ATOM_HOST:ATOM_PORT).")]

FINISHED_STEPS = {"succeeded", "failed", "skipped", "cancelled"}
STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "skipped": "dim",
    "waiting": "magenta",
    "running": "cyan",
    "queued": "blue",
    "pending": "dim",
}
POLL_S = 0.3


# --- talking to the API -----------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.base = url.rstrip("/")
        self.client = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=30.0)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.base} ({type(exc).__name__}); is `atom-os serve` running?")
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = (body or {}).get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict):
                error = {"code": "HTTP_ERROR", "message": f"HTTP {response.status_code}", "details": {}}
            raise ApiError(
                response.status_code,
                str(error.get("code", "")),
                str(error.get("message", "")),
                error.get("details") or {},
            )
        return body

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.client.close()


@contextmanager
def api(url: str | None, key: str | None) -> Iterator[Api]:
    if not key:
        fail("an API key is needed: pass --key or set ATOM_API_KEY (create one with `atom-os keys create`).")
    client = Api(url or load_settings().base_url, key)
    try:
        yield client
    except ApiError as exc:
        _report(exc)
    finally:
        client.close()


def _report(exc: ApiError) -> NoReturn:
    problems = exc.details.get("errors") if isinstance(exc.details, dict) else None
    if isinstance(problems, list) and problems:
        _print_problems(problems, err=True)
        fail(f"{exc.message} ({exc.code})")
    fail(f"{exc.message} ({exc.code}, HTTP {exc.status})")


def _print_problems(problems: list[dict[str, Any]], *, source: str = "", err: bool = False) -> None:
    out = err_console if err else console
    for p in problems:
        line = f"line {p['line']}" if p.get("line") else "line ?"
        field = p.get("field") or "(document)"
        out.print(f"  {source}{line}: [bold]{field}[/]: {p.get('message', '')}", highlight=False, soft_wrap=True)


def _read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"no file at {path}.")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}.")


def _source_body(text: str) -> dict[str, Any]:
    return {"source": text, "format": detect_format(text)}


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs; a value that is JSON (`5`, `true`, `{"a": 1}`) is sent as that JSON value."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--input {pair!r}: use NAME=VALUE.")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        inputs[name.strip()] = value
    return inputs


# --- definitions ------------------------------------------------------------------------------


@app.command()
def validate(
    file: Path,
    key: KeyOption = None,
    url: UrlOption = None,
    offline: bool = typer.Option(
        False, "--offline", help="Only the local checks (no server: actions, agents, secrets are not checked)."
    ),
) -> None:
    """Check a definition: locally (schema, graph, templates), then on the server (actions, agents, secrets)."""
    text = _read_source(file)
    try:
        parsed = parse(text)
    except DefinitionError as exc:
        err_console.print(f"[bold red]{file}: invalid[/] ({len(exc.problems)} problem(s))")
        _print_problems(exc.problems, source=f"{file}: ", err=True)
        raise typer.Exit(1) from None
    if offline:
        order = topological_order(parsed.definition)
        console.print(f"{file}: [green]valid locally[/] ({parsed.definition.name}, {len(order)} steps)")
        console.print("order: " + " -> ".join(order), highlight=False)
        return
    with api(url, key) as client:
        result = client.post("/api/workflows/validate", json=_source_body(text))
    if not result["valid"]:
        err_console.print(f"[bold red]{file}: invalid[/] ({len(result['problems'])} problem(s))")
        _print_problems(result["problems"], source=f"{file}: ", err=True)
        raise typer.Exit(1)
    console.print(f"{file}: [green]valid[/] ({result['name']}, {result['steps']} steps)")
    console.print("order: " + " -> ".join(result["order"]), highlight=False)


def _fire_time(value: str, zone: str) -> str:
    """`2026-12-01 01:00 UTC (02:00 Europe/Paris)`."""
    at = datetime.fromisoformat(value).astimezone(UTC)
    shown = f"{at:%Y-%m-%d %H:%M} UTC"
    if zone != "UTC":
        local = at.astimezone(ZoneInfo(zone))
        shown += f" ({local:%Y-%m-%d %H:%M} {zone})"
    return shown


def _show_detail(detail: dict[str, Any], base_url: str) -> None:
    console.print(f"[bold]{detail['name']}[/] {detail['id']} version {detail['current_version']}", highlight=False)
    if detail.get("description"):
        console.print(detail["description"], highlight=False)
    definition = detail.get("definition") or {}
    agents = detail.get("agent_ids") or {}
    if agents.get(""):
        console.print(f"agent: {definition.get('agent', '')} ({agents['']})", highlight=False)
    steps = Table("step", "type", "action", "needs", "agent")
    for step in definition.get("steps", []):
        steps.add_row(
            step["id"],
            step.get("type", "action"),
            step.get("action", ""),
            ", ".join(step.get("needs", [])),
            step.get("agent", ""),
        )
    console.print(steps)
    triggers = detail.get("triggers") or []
    if not triggers:
        console.print("triggers: manual only")
        return
    table = Table("trigger", "kind", "enabled", "details", "next fire times")
    webhook_urls: list[str] = []
    for t in triggers:
        config = t.get("config") or {}
        if t["kind"] == "schedule":
            what = f"{config.get('cron')} {config.get('timezone', 'UTC')} missed={config.get('missed', 'skip')}"
        elif t["kind"] == "webhook":
            what = f"secret {config.get('secret')}, URL below"
            webhook_urls.append(f"webhook {t['trigger_key']}: POST {base_url}{t.get('webhook_path')}")
        else:
            what = f"event {config.get('event')}" + (
                f" filter {json.dumps(config['filter'])}" if config.get("filter") else ""
            )
        fires = "\n".join(_fire_time(f, config.get("timezone", "UTC")) for f in t.get("next_fire_times") or [])
        table.add_row(t["trigger_key"], t["kind"], "yes" if t["enabled"] else "no", what, fires)
    console.print(table)
    for line in webhook_urls:  # whole on one line at any width, to be copied (a table cell would fold it)
        console.print(line, soft_wrap=True, highlight=False, markup=False)


@app.command()
def create(file: Path, key: KeyOption = None, url: UrlOption = None) -> None:
    """Store a new workflow (version 1) from a YAML or JSON file."""
    text = _read_source(file)
    with api(url, key) as client:
        detail = client.post("/api/workflows", json=_source_body(text))
        console.print(f"created [bold]{detail['name']}[/] {detail['id']} (version 1)", highlight=False)
        _show_detail(detail, client.base)


@app.command()
def update(ref: str, file: Path, key: KeyOption = None, url: UrlOption = None) -> None:
    """Store the file as a new version of the workflow (runs in progress keep theirs)."""
    text = _read_source(file)
    with api(url, key) as client:
        detail = client.request("PUT", f"/api/workflows/{ref}", json=_source_body(text))
        console.print(f"updated [bold]{detail['name']}[/]: version {detail['current_version']}", highlight=False)
        _show_detail(detail, client.base)


@app.command("list")
def list_workflows(
    key: KeyOption = None, url: UrlOption = None, limit: int = typer.Option(100, min=1, max=500)
) -> None:
    """List workflows."""
    with api(url, key) as client:
        page = client.get("/api/workflows", params={"limit": limit})
    table = id_table("id", "name", "version", "updated", "description")
    for w in page["items"]:
        table.add_row(w["id"], w["name"], str(w["current_version"]), w["updated_at"][:19], w["description"][:60])
    console.print(table)


@app.command()
def show(ref: str, key: KeyOption = None, url: UrlOption = None) -> None:
    """Show a workflow: its steps, triggers, webhook URLs and next fire times."""
    with api(url, key) as client:
        detail = client.get(f"/api/workflows/{ref}")
        _show_detail(detail, client.base)


@app.command()
def delete(
    ref: str,
    key: KeyOption = None,
    url: UrlOption = None,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a workflow, its versions, triggers and finished runs (refused while a run is active)."""
    if not yes:
        typer.confirm(f"Delete workflow {ref} and its run history?", abort=True)
    with api(url, key) as client:
        client.request("DELETE", f"/api/workflows/{ref}")
    console.print(f"workflow {ref} deleted")


# --- runs -------------------------------------------------------------------------------------


def _create_or_update(client: Api, path: Path) -> str:
    """The workflow from the file, stored: created, updated to a new version, or unchanged. Its id."""
    text = _read_source(path)
    try:
        detail = client.post("/api/workflows", json=_source_body(text))
        console.print(f"created workflow [bold]{detail['name']}[/] (version 1)", highlight=False)
        return str(detail["id"])
    except ApiError as exc:
        if exc.code != "WORKFLOW_EXISTS":
            raise
        name = str(exc.details.get("name"))
    current = client.get(f"/api/workflows/{name}")
    if current["source"] == text:
        console.print(f"workflow [bold]{name}[/] unchanged (version {current['current_version']})", highlight=False)
        return str(current["id"])
    detail = client.request("PUT", f"/api/workflows/{current['id']}", json=_source_body(text))
    console.print(f"updated workflow [bold]{name}[/] to version {detail['current_version']}", highlight=False)
    return str(detail["id"])


@app.command("run")
def run_workflow(
    target: str = typer.Argument(..., help="Workflow id or name, or a definition file (created or updated first)."),
    inputs: list[str] = typer.Option([], "--input", "-i", help="NAME=VALUE (a JSON value or a string); repeat."),
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Show live progress until the run finishes."),
    timeout: float = typer.Option(0, "--timeout", min=0, help="Stop watching after this many seconds (0: never)."),
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Run a workflow now. With --watch (default), exit 0 only if the run succeeds."""
    values = _parse_inputs(inputs)
    with api(url, key) as client:
        path = Path(target)
        ref = _create_or_update(client, path) if path.is_file() else target
        started = client.post(f"/api/workflows/{ref}/runs", json={"inputs": values})
        run_id = started.get("run_id")
        if not run_id:
            _not_started(started)
        console.print(f"run {run_id} started ({started['route']}: {started['reason']})", highlight=False)
        if not watch:
            return
        detail = _watch(client, run_id, timeout)
        if detail["status"] == "failed":
            _print_guidance(client, run_id)
    _finish(detail)


def _not_started(started: dict[str, Any]) -> NoReturn:
    console.print(f"[bold]{started['route']}[/] ({started['agent_level']}): {started['reason']}", highlight=False)
    if started.get("proposal_id"):
        console.print(f"proposal {started['proposal_id']}: `atom-os proposals show {started['proposal_id']}`")
    if started.get("supervision_session_id"):
        console.print(f"supervision session {started['supervision_session_id']}")
    raise typer.Exit(1)


def _step_line(step: dict[str, Any]) -> str:
    status = step["status"]
    style = STATUS_STYLE.get(status, "white")
    extra = ""
    if step.get("attempt", 0) > 1:
        extra += f" attempt {step['attempt']}"
    if step.get("duration_ms") is not None:
        extra += f" {step['duration_ms'] / 1000:.2f}s"
    if status == "waiting" and step.get("kind") == "approval":
        extra += " (approve: `atom-os workflows approve RUN STEP`)"
    if step.get("error"):
        extra += f" {step['error'][:80]}"
    return f"[{style}]{status}[/]{extra}"


def _watch(client: Api, run_id: str, timeout: float) -> dict[str, Any]:
    """Poll the run and show one progress bar per step until the run finishes."""
    deadline = time.monotonic() + timeout if timeout else None
    detail: dict[str, Any] = client.get(f"/api/workflow-runs/{run_id}")
    progress = Progress(
        SpinnerColumn(finished_text="•"),
        TextColumn("[bold]{task.fields[step]}", justify="left"),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    overall: TaskID | None = None
    with progress:
        while True:
            # The run as a whole, in plain words (docs/guidance.md): steps finished of all, what, what next.
            guide = client.get(f"/api/guidance/workflow-runs/{run_id}")
            if overall is None:
                overall = progress.add_task("run", total=max(guide["total"], 1), step="progress", state="")
            progress.update(overall, total=max(guide["total"], 1), completed=guide["step"], state=_guide_line(guide))
            for step in detail["steps"]:
                key = step["step_key"]
                if key not in tasks:
                    tasks[key] = progress.add_task(key, total=1, step=key, state="", start=False)
                task = tasks[key]
                if step["status"] not in ("pending", "queued"):
                    progress.start_task(task)
                done = step["status"] in FINISHED_STEPS
                progress.update(task, completed=1 if done else 0, state=_step_line(step))
                if done:
                    progress.stop_task(task)
            if detail["status"] != "running":
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
            detail = client.get(f"/api/workflow-runs/{run_id}")
    return detail


def _guide_line(guide: dict[str, Any]) -> str:
    line = f"{guide['step']}/{guide['total']} · {guide['what']}"
    if guide["status"] == "running" and guide["next"]:
        line += f" · {guide['next']}"
    return escape(line if len(line) <= 160 else line[:159] + "…")


def _print_guidance(client: Api, run_id: str) -> None:
    """What to do about the failed step: the suggested resolution first (docs/guidance.md)."""
    guidance = client.get(f"/api/guidance/workflow-runs/{run_id}").get("guidance")
    if not guidance:
        return
    console.print(f"[bold]{escape(guidance['label'])}[/]: {escape(guidance['meaning'])}", highlight=False)
    fixes = sorted((guidance["agent_fix"], guidance["person_fix"]), key=lambda r: r["id"] != guidance["suggested"])
    for fix in fixes:
        who = "the agent can" if fix["who"] == "agent" else "a person must"
        mark = " (suggested)" if fix["id"] == guidance["suggested"] else ""
        console.print(f"  {who}: {escape(fix['title'])}{mark}", highlight=False)
        for line in fix["steps"]:
            console.print(f"    - {escape(line)}", highlight=False)


def _finish(detail: dict[str, Any]) -> None:
    status = detail["status"]
    style = STATUS_STYLE.get(status, "white")
    console.print(f"run {detail['id']}: [bold {style}]{status}[/]", highlight=False)
    if detail.get("error"):
        console.print(f"error: {detail['error']}", highlight=False, soft_wrap=True)
    if status == "running":
        console.print(f"still running; follow it with `atom-os workflows run-show {detail['id']}`")
    raise typer.Exit(0 if status == "succeeded" else 1)


@app.command()
def runs(
    ref: str,
    status: str | None = typer.Option(None, help="running, succeeded, failed or cancelled."),
    limit: int = typer.Option(50, min=1, max=500),
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """List a workflow's runs."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    with api(url, key) as client:
        page = client.get(f"/api/workflows/{ref}/runs", params=params)
    table = id_table("run", "status", "version", "source", "started", "finished")
    for r in page["items"]:
        table.add_row(
            r["id"],
            f"[{STATUS_STYLE.get(r['status'], 'white')}]{r['status']}[/]",
            str(r["version"]),
            r["source"],
            r["created_at"][:19],
            (r.get("finished_at") or "")[:19],
        )
    console.print(table)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False) if value not in (None, {}) else ""


def _show_run(detail: dict[str, Any]) -> None:
    status = detail["status"]
    console.print(
        f"run [bold]{detail['id']}[/] of workflow {detail['workflow_id']} version {detail['version']}: "
        f"[bold {STATUS_STYLE.get(status, 'white')}]{status}[/]",
        highlight=False,
    )
    console.print(
        f"source {detail['source']} ({detail['trigger_kind']}), agent {detail['agent_id']}, "
        f"started {detail['created_at']}"
        + (f", finished {detail['finished_at']}" if detail.get("finished_at") else ""),
        highlight=False,
    )
    if detail.get("inputs"):
        console.print(f"inputs: {_json(detail['inputs'])}", highlight=False)
    if detail.get("error"):
        console.print(f"[red]error:[/] {detail['error']}", highlight=False)
    for step in detail["steps"]:
        style = STATUS_STYLE.get(step["status"], "white")
        head = f"[bold]{step['step_key']}[/] ({step['action'] or step['kind']}) [{style}]{step['status']}[/]"
        timing = []
        if step.get("attempt"):
            timing.append(f"attempt {step['attempt']}")
        if step.get("started_at"):
            timing.append(f"started {step['started_at']}")
        if step.get("finished_at"):
            timing.append(f"finished {step['finished_at']}")
        if step.get("duration_ms") is not None:
            timing.append(f"{step['duration_ms']:.1f} ms")
        if step.get("due_at"):
            timing.append(f"due {step['due_at']}")
        console.print(head + (" · " + ", ".join(timing) if timing else ""), highlight=False)
        for label, value in (("input", step.get("input")), ("output", step.get("output"))):
            if value not in (None, {}):
                console.print(f"    {label}: {_json(value)}", highlight=False, soft_wrap=True)
        if step.get("error"):
            console.print(f"    [red]error[/] {step.get('error_code') or ''}: {step['error']}", highlight=False)
        if step.get("proposal_id"):
            console.print(f"    proposal {step['proposal_id']}", highlight=False)
        for log in step.get("logs") or []:
            console.print(f"    [dim]log {log.get('at', '')} {log.get('message', '')}[/]", highlight=False)


@app.command("run-show")
def run_show(run_id: str, key: KeyOption = None, url: UrlOption = None) -> None:
    """Show a run: each step's status, input, output, error, logs and timings."""
    with api(url, key) as client:
        detail = client.get(f"/api/workflow-runs/{run_id}")
    _show_run(detail)


@app.command()
def cancel(run_id: str, key: KeyOption = None, url: UrlOption = None) -> None:
    """Cancel a running run (a running step is interrupted, the rest do not run)."""
    with api(url, key) as client:
        detail = client.post(f"/api/workflow-runs/{run_id}/cancel")
    console.print(f"run {run_id}: [bold]{detail['status']}[/]", highlight=False)


@app.command()
def retry(
    run_id: str,
    watch: bool = typer.Option(False, "--watch/--no-watch", help="Show live progress until the run finishes."),
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Run a failed run again from its failed step; steps that succeeded are not repeated."""
    with api(url, key) as client:
        detail = client.post(f"/api/workflow-runs/{run_id}/retry")
        console.print(f"run {run_id}: retrying ({detail['status']})", highlight=False)
        if not watch:
            return
        detail = _watch(client, run_id, 0)
    _finish(detail)


@app.command()
def approve(
    run_id: str,
    step: str,
    reason: str | None = typer.Option(None, help="Why (kept in the audit log)."),
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Approve a waiting approval step (an approver's key); the run continues.

    The same approval is listed by `atom-os proposals list`; deciding it there works too."""
    with api(url, key) as client:
        detail = client.post(f"/api/workflow-runs/{run_id}/steps/{step}/approve", json={"reason": reason})
    console.print(f"step {step} approved; run {run_id} is {detail['status']}", highlight=False)


@app.command()
def reject(
    run_id: str,
    step: str,
    reason: str = typer.Option(..., help="Why (kept in the audit log and the step's error)."),
    key: KeyOption = None,
    url: UrlOption = None,
) -> None:
    """Reject a waiting approval step (an approver's key); the run fails at that step."""
    with api(url, key) as client:
        detail = client.post(f"/api/workflow-runs/{run_id}/steps/{step}/reject", json={"reason": reason})
    console.print(f"step {step} rejected; run {run_id} is {detail['status']}", highlight=False)
