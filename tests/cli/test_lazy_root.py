"""The root command loads an area only when its command runs, and every listed command resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from atom.cli.main import COMMANDS
from atom.cli.main import app as cli

runner = CliRunner()

# What `version` and `--help` must not pay for: the database layer, the web app, the provider SDKs.
HEAVY = ("sqlalchemy", "fastapi", "openai", "anthropic", "atom.db", "atom.agents", "rich")


@pytest.mark.parametrize("argv", [["version"], ["--help"]])
def test_light_commands_import_no_domain(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        "from atom.cli.main import app\n"
        f"sys.argv = ['atom-os', *{argv!r}]\n"
        "try:\n"
        "    app()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert "LOADED []" in result.stdout, result.stdout + result.stderr


def test_help_lists_every_command() -> None:
    result = runner.invoke(cli, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    flat = " ".join(result.output.split())  # help text wraps at the terminal width
    for command in COMMANDS:
        assert f" {command.name} {command.help}" in flat


@pytest.mark.parametrize("name", [command.name for command in COMMANDS])
def test_every_listed_command_loads_and_has_help(name: str) -> None:
    result = runner.invoke(cli, [name, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "--install-completion" not in result.output


def test_version_prints_the_installed_version() -> None:
    from atom import __version__

    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 0 and result.output.strip() == f"atom-os {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(cli, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output
