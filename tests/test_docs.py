"""The README must stay true: every setting is documented in its table, with its current text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _render_table() -> str:
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.render())


def test_readme_settings_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [line for line in _render_table().splitlines() if line not in readme]
    assert not missing, (
        "README settings table is out of date; regenerate it with "
        "`.venv/bin/python scripts/settings_table.py` and paste it. Missing lines:\n" + "\n".join(missing)
    )
