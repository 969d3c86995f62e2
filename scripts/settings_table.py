"""The README's settings table, from `atom.config.Settings`.

`.venv/bin/python scripts/settings_table.py --write` refreshes it in README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

from atom.config import Settings


def _default(field_name: str) -> str:
    field = Settings.model_fields[field_name]
    if field.default_factory is not None:
        return "`~/.atom`" if field_name == "data_dir" else "(computed)"
    value = field.default
    if value is None or value is PydanticUndefined:
        return "(empty)"
    if hasattr(value, "value"):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def render() -> str:
    lines = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `ATOM_{name.upper()}` | {_default(name)} | {description} |")
    return "\n".join(lines)


START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def write_readme(readme: Path) -> None:
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render()}\n{END}{tail}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_readme(Path(__file__).resolve().parents[1] / "README.md")
    else:
        print(render())
