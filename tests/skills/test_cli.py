"""`atom-os skills`: import a folder of real skills, read the findings, trust one, run it, ban another."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from atom.config import Settings
from atom.db.session import Database
from atom.skills.sandbox import Sandbox
from tests.cli.test_commands import invoke
from tests.skills.corpus import DATA, corpus_dir
from tests.support import databases


def _env(settings: Settings) -> dict[str, str]:
    values = {"ATOM_DATA_DIR": str(settings.data_dir), "ATOM_LOG_FORMAT": "json", "COLUMNS": "250"}
    if settings.secret_key:
        values["ATOM_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if settings.database_url:
        values["ATOM_DATABASE_URL"] = settings.database_url
    return values


def test_import_show_trust_run_ban(settings: Settings, db: Database, tmp_path: Path) -> None:
    if Sandbox().probe():
        databases.missing_service("the skill sandbox cannot confine here")
    env = _env(settings)
    tree = tmp_path / "skills"
    for name in ("youtube-thumbnail-grabber", "apple-notes"):
        shutil.copytree(corpus_dir() / name, tree / "community" / name)
    shutil.copytree(DATA / "word-count", tree / "mine" / "word-count")
    code, out = invoke(env, "skills", "import", str(tree))
    assert code == 0, out
    assert "malicious 1" in out and "pass 2" in out
    code, out = invoke(env, "skills", "show", "youtube-thumbnail-grabber")
    assert code == 0 and "password_archive" in out and "SKILL.md:13" in out
    code, out = invoke(env, "skills", "show", "word-count")
    content_hash = re.search(r"content hash: ([0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
    code, out = invoke(env, "skills", "run", "word-count")
    assert code == 1 and "untrusted" in out
    code, out = invoke(env, "skills", "trust", "word-count", "--hash", content_hash)
    assert code == 0 and "active" in out
    code, out = invoke(env, "skills", "trust", "youtube-thumbnail-grabber", "--hash", "0" * 64)
    assert code == 1
    code, out = invoke(env, "skills", "run", "word-count")
    assert code == 0 and out.strip() == "0"  # no stdin: zero words
    code, out = invoke(env, "skills", "ban", "youtube-thumbnail-grabber", "--reason", "malware")
    assert code == 0 and "banned" in out
    code, out = invoke(env, "skills", "list")
    assert re.search(r"word-count\s+│?\s*active", out) and re.search(r"youtube-thumbnail-grabber\s+│?\s*banned", out)
