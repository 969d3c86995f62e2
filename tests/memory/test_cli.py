"""`atom-os memory ...` against the database: list, search with scores, export, maintain, reembed, forget."""

from __future__ import annotations

import json
from datetime import timedelta

from atom.config import Settings
from atom.db.session import Database
from atom.memory import service
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from tests.cli.test_commands import ainvoke, env  # noqa: F401 - the fixture
from tests.memory.conftest import START
from tests.support.agents import make_agent


async def test_memory_commands(env: dict[str, str], settings: Settings, db: Database, memory: Memory) -> None:  # noqa: F811
    agent = await make_agent(db, settings, name="collector")
    async with db.session_scope() as s:
        for n, text in enumerate(["Wayne Enterprises disputed invoice INV-8812", "Stark Industries paid INV-8813"]):
            await service.record_events(
                session=s,
                memory=memory,
                events=[Event(agent.id, START + timedelta(hours=n), "message", text, "execution", completes_task=True)],
            )
    code, out = await ainvoke(env, "memory", "list", "collector")
    assert code == 0, out
    assert "Wayne Enterprises" in out and "Stark Industries" in out

    code, out = await ainvoke(env, "memory", "search", "collector", "INV-8812")
    assert code == 0, out
    first = next(line for line in out.splitlines() if "rrf=" in line)
    assert "Wayne" in first and "text_rank=1.000" in first

    export = settings.data_dir / "export.jsonl"
    code, out = await ainvoke(env, "memory", "export", "collector", "--out", str(export))
    assert code == 0 and "2 episodes written" in out
    assert len([json.loads(x) for x in export.read_text().splitlines()]) == 2

    code, out = await ainvoke(env, "memory", "maintain")
    assert code == 0 and "dry run:" in out, out
    code, out = await ainvoke(env, "memory", "reembed", "--agent", "collector")
    assert code == 0 and "2 episodes re-embedded" in out, out

    code, out = await ainvoke(env, "memory", "forget", "collector", "--yes")
    assert code == 0 and "2 episodes deleted" in out, out
    assert await memory.store.ids(agent.id) == set()

    code, out = await ainvoke(env, "memory", "export", "nobody")
    assert code == 1 and "nobody" in out
