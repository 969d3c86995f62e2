"""What community skills add to the start of every agent run: `skills.tools.for_run` (read the Active
skills, build the prompt lines and the run's tools) with 0 and with 64 Active skills (half of them code
skills, scripts cached after the first run), on SQLite, as a ratio to reading the agent row in its own
transaction (the floor, measured in the same run). No target is named in the issue; figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from atom.agents import service as agents_service
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database
from atom.registries import build_registries, install
from atom.skills import bundle, service
from atom.skills import tools as skill_tools

SYSTEM = audit.Actor.system()
COUNT_PY = "import sys\nprint(len(sys.stdin.read().split()))\n"


def _skill(n: int) -> bundle.SkillBundle:
    name = f"bench-skill-{n:03d}"
    md = f"---\nname: {name}\ndescription: Benchmark skill number {n}, for measuring run starts.\n---\n\nDo {n}.\n"
    members = {"SKILL.md": md.encode()}
    if n % 2:
        members["scripts/count.py"] = COUNT_PY.encode()
    return bundle.build_bundle(name, members, "bench")


async def _median_ms(db: Database, fn: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        async with db.session_scope() as session:
            await fn(session)  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def measure(runs: int, skills: int) -> None:
    registries = build_registries()
    install(registries)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        db = Database(settings)
        await migrate.upgrade(db)
        async with db.session_scope() as session:
            agent = await agents_service.create_agent(
                session=session, agent_in=AgentCreate(name="bench", confidence=0.8), actor=SYSTEM,
                settings=settings, may_promote=True,
            )  # fmt: skip
            agent_id = agent.id

        async def floor(session: object) -> None:
            await agents_service.get_agent(session=session, agent_id=agent_id)  # type: ignore[arg-type]

        async def for_run(session: object) -> None:
            await skill_tools.for_run(
                session=session,  # type: ignore[arg-type]
                db=db,
                base=registries.tools,
                agent_id=agent_id,
                offers=lambda tool: True,
            )

        base = await _median_ms(db, floor, runs)
        empty = await _median_ms(db, for_run, runs)
        async with db.session_scope() as session:
            for n in range(skills):
                skill, version, _ = await service.import_bundle(session=session, bundle=_skill(n), actor=SYSTEM)
                await service.trust(
                    session=session, ref=skill.name, content_hash_seen=version.content_hash, actor=SYSTEM
                )
        await _median_ms(db, for_run, 20)  # warm-up: the scripts cache, SQLite's page cache after the writes
        full = await _median_ms(db, for_run, runs)
        base_again = await _median_ms(db, floor, runs)
        await db.dispose()
    floor_ms = (base + base_again) / 2
    print(f"skills at run start (SQLite), median of {runs}:")
    print(f"  floor: read the agent in its own transaction   {floor_ms:7.3f} ms")
    print(f"  for_run, no Active skill                       {empty:7.3f} ms  ratio {empty / floor_ms:5.2f}x")
    print(
        f"  for_run, {skills} Active skills ({skills // 2} code)        {full:7.3f} ms  ratio {full / floor_ms:5.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--skills", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(measure(args.runs, args.skills))
    return 0


if __name__ == "__main__":
    sys.exit(main())
