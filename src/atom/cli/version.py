"""`atom-os version`: prints the installed version and imports nothing else."""

from __future__ import annotations

import typer

from atom import __version__


def version() -> None:
    """Print Atom's version."""
    typer.echo(f"atom-os {__version__}")
