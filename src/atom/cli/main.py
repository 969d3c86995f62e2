"""`atom-os`: one Typer module per area, combined here and imported only when its command runs.

Importing every area (SQLAlchemy, the web app, the provider SDKs) costs seconds, so the root
group knows each command by name, module and one-line help, and loads a module only when its
command is invoked (or its own `--help` is asked for). `atom-os --help` and `atom-os version`
import nothing of Atom beyond this file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    name: str
    module: str
    attribute: str
    help: str


COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "init",
        "atom.cli.setup",
        "init",
        "Create the data directory, migrate the database, create the first admin and print its API key.",
    ),
    LazyCommand("version", "atom.cli.version", "version", "Print Atom's version."),
    LazyCommand(
        "serve", "atom.cli.server", "serve", "Run Atom in the foreground (Ctrl-C or SIGTERM stops it gracefully)."
    ),
    LazyCommand(
        "daemon", "atom.cli.daemon", "daemon", "Start Atom in the background (PID and log file in the data directory)."
    ),
    LazyCommand("status", "atom.cli.daemon", "status", "Show whether the background service runs, and its health."),
    LazyCommand(
        "stop", "atom.cli.daemon", "stop", "Stop the background service gracefully (in-flight requests finish first)."
    ),
    LazyCommand(
        "trigger",
        "atom.cli.training",
        "trigger",
        "Fire a trigger: blocked, proposed, supervised or run by the agent's maturity.",
    ),
    LazyCommand(
        "supervise",
        "atom.cli.supervise",
        "supervise",
        "Watch a supervised run live: pause, resume, correct or terminate it.",
    ),
    LazyCommand(
        "chat", "atom.cli.chat", "chat", "Chat with an agent in the terminal; answers stream as they are written."
    ),
    LazyCommand(
        "execute", "atom.cli.chat", "execute", "Run an agent once on a task; exit code 0 only if the run completed."
    ),
    LazyCommand("worker", "atom.cli.worker", "worker", "Run workflow steps from the job queue (scale-out worker)."),
    LazyCommand("db", "atom.cli.db", "app", "Database schema migrations."),
    LazyCommand("users", "atom.cli.users", "app", "People and their roles (viewer < operator < approver < admin)."),
    LazyCommand("keys", "atom.cli.keys", "app", "API keys: shown once, stored hashed, revocable."),
    LazyCommand("secrets", "atom.cli.secrets", "app", "The encrypted secrets store (values are never printed)."),
    LazyCommand("audit", "atom.cli.audit", "app", "The hash-chained audit log."),
    LazyCommand("agents", "atom.cli.agents", "app", "Agents: registry, status, confidence and promotion."),
    LazyCommand("governance", "atom.cli.governance", "app", "The action catalogue and governance decisions."),
    LazyCommand(
        "proposals",
        "atom.cli.training",
        "proposals_app",
        "Proposals waiting for a person: list, show, approve, reject.",
    ),
    LazyCommand("training", "atom.cli.training", "training_app", "Training sessions of STUDENT agents."),
    LazyCommand(
        "workflows",
        "atom.cli.workflows",
        "app",
        "Workflows and their runs: validate, create, run with live progress, approve.",
    ),
    LazyCommand("llm", "atom.cli.llm", "app", "LLM providers (bring your own key), token usage, cost and budgets."),
    LazyCommand("feedback", "atom.cli.feedback", "app", "Feedback on agents: list it, see an agent's figures."),
    LazyCommand(
        "memory", "atom.cli.memory", "app", "Episodic memory: list, show, search, export, forget, maintain, reembed."
    ),
    LazyCommand(
        "graduation", "atom.cli.graduation", "app", "Graduation: the constitutional rule set agents are scored against."
    ),
    LazyCommand("skills", "atom.cli.skills", "app", "Community skills: import, scan, trust, ban, run in the sandbox."),
    LazyCommand(
        "abtests", "atom.cli.feedback", "abtests_app", "A/B tests of agent variants: list them, see their results."
    ),
)

_BY_NAME = {command.name: command for command in COMMANDS}
_COMPLETION_PARAMS = {"install_completion", "show_completion"}


def load_command(entry: LazyCommand) -> _click.Command:
    """Import the command's module and turn its Typer app or function into a click command."""
    target: Any = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        single.command(name=entry.name)(target)
        command = typer.main.get_command(single)
    command.name = entry.name
    # Shell completion is the root's business; sub-apps would otherwise each offer it again.
    command.params = [param for param in command.params if param.name not in _COMPLETION_PARAMS]
    return command


class LazyGroup(TyperGroup):
    """A root group whose sub-commands are imported on first use; help comes from COMMANDS."""

    def __init__(self, **attrs: Any) -> None:
        attrs["rich_markup_mode"] = None  # plain click help: rich is not imported for --help
        super().__init__(**attrs)
        self._loaded: dict[str, _click.Command] = {}

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return [command.name for command in COMMANDS]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        entry = _BY_NAME.get(cmd_name)
        if entry is None:
            return None
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(entry)
        return self._loaded[cmd_name]

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(command.name, command.help) for command in COMMANDS])


app = typer.Typer(
    name="atom-os",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Atom: AI agents that automate business work under governance."""


def run() -> None:
    app()
