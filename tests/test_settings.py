"""Settings: each one is read by the code it documents, and a bad one stops startup naming itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from atom.config import Settings

SRC = Path(__file__).resolve().parents[1] / "src" / "atom"


def test_every_setting_is_read_by_the_code() -> None:
    """A setting exists only with its behaviour: each field is read outside its own definition."""
    config = (SRC / "config.py").read_text()
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p.name != "config.py" or p.parent != SRC)
    unread = [
        name
        for name in Settings.model_fields
        if not re.search(rf"\.{name}\b", code) and not re.search(rf"self\.{name}\b", config)
    ]
    assert unread == []


def _startup(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    return subprocess.run(
        [sys.executable, "-m", "atom", "serve"],
        env={**clean, "ATOM_DATA_DIR": str(tmp_path), "COLUMNS": "300", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ATOM_MATURITY_INTERN_THRESHOLD": "0.8"}, "ATOM_MATURITY_SUPERVISED_THRESHOLD"),
        ({"ATOM_MATURITY_INTERN_THRESHOLD": "0"}, "ATOM_MATURITY_INTERN_THRESHOLD"),
        ({"ATOM_MATURITY_AUTONOMOUS_THRESHOLD": "0.6"}, "ATOM_MATURITY_AUTONOMOUS_THRESHOLD"),
        ({"ATOM_INITIAL_CONFIDENCE": "0.5"}, "ATOM_INITIAL_CONFIDENCE"),
    ],
)
def test_a_bad_maturity_threshold_stops_startup_naming_the_setting(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    done = _startup(tmp_path, **env)
    assert done.returncode == 1, done.stderr
    error = " ".join(done.stderr.split())
    assert "ATOM_?" not in error
    assert error.startswith(f"error: {named}:"), error
    assert "ATOM_MATURITY_INTERN_THRESHOLD" in error and f"Fix: set {named}" in error
    assert not (tmp_path / "atom.db").exists()  # nothing started
