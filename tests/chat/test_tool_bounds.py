"""No built-in tool call can freeze the server: a calculator bomb is refused while the server keeps answering."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.runtime.builtin_tools import MAX_RESULT_BITS
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply

BOMBS = ["((10**1000)**1000)**10", "((10**1000)**1000)**100", "9**9**9"]


async def test_calculator_bombs_are_refused_while_the_server_stays_live(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    """A STUDENT's run calls the calculator with each bomb; liveness probes sent alongside are all answered,
    and the model is told each call was refused for its size (not a crash, not a result)."""
    await agent_named(db, settings, MaturityLevel.STUDENT, "bomber")
    calls = [ScriptedToolCall("calculate", [json.dumps({"expression": e})], id=f"c{i}") for i, e in enumerate(BOMBS)]
    llm_server.queue(tool_reply(*calls), text_reply("Refused."))
    async with httpx.AsyncClient(base_url=f"http://{live}", timeout=60) as http:

        async def probes() -> list[int]:
            answers = []
            for _ in range(20):
                answers.append((await http.get("/health/live")).status_code)
                await asyncio.sleep(0)
            return answers

        run_response, live_answers = await asyncio.gather(
            http.post("/api/chat/execute", json={"agent": "bomber", "task": "compute"}, headers=admin.headers),
            probes(),
        )
    assert live_answers == [200] * 20
    assert run_response.status_code == 200, run_response.text
    run: dict[str, Any] = run_response.json()
    assert run["status"] == "completed" and run["output"] == "Refused."
    assert [c["status"] for c in run["tool_calls"]] == ["failed"] * len(BOMBS)
    told = [m["content"] for m in llm_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert len(told) == len(BOMBS)
    for content in told:
        assert "too large" in content and str(MAX_RESULT_BITS) in content
