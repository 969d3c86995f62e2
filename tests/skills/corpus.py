"""Where the shared corpus of real community skills is: `shared/` beside the clone (or its parent)."""

from __future__ import annotations

from pathlib import Path

from tests.support import databases

_REPO = Path(__file__).resolve().parents[2]
_CANDIDATES = (_REPO.parent / "shared" / "corpus" / "skills", _REPO.parent.parent / "shared" / "corpus" / "skills")
DATA = Path(__file__).resolve().parent.parent / "data" / "skills"


def corpus_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "README.md").is_file():
            return candidate
    databases.missing_service("the skills corpus (shared/corpus/skills beside the clone) is not there")
    raise AssertionError("unreachable")
