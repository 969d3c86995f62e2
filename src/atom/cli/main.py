"""`atom-os`: one Typer app per module, combined here."""

from __future__ import annotations

import typer

from atom.cli import agents, audit, daemon, db, governance, keys, secrets, server, setup, supervise, training, users
from atom.cli import chat as chat_cli
from atom.cli import llm as llm_cli
from atom.cli import skills as skills_cli
from atom.cli import workflows as workflows_cli
from atom.cli.worker import worker as worker_command

app = typer.Typer(
    name="atom-os",
    help="Atom: AI agents that automate business work under governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(setup.init)
app.command()(setup.version)
app.command()(server.serve)
app.command()(daemon.daemon)
app.command()(daemon.status)
app.command()(daemon.stop)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(secrets.app, name="secrets")
app.add_typer(audit.app, name="audit")
app.add_typer(agents.app, name="agents")
app.add_typer(governance.app, name="governance")
app.command()(training.trigger)
app.add_typer(training.proposals_app, name="proposals")
app.add_typer(training.training_app, name="training")
app.command()(supervise.supervise)
app.command(name="chat")(chat_cli.chat)
app.command(name="execute")(chat_cli.execute)
app.add_typer(workflows_cli.app, name="workflows")
app.add_typer(llm_cli.app, name="llm")
app.command(name="worker")(worker_command)
app.add_typer(skills_cli.app, name="skills")


def run() -> None:
    app()
