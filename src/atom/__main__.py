"""`python -m atom ...` runs the atom-os CLI."""

from atom.cli.main import run

run()
