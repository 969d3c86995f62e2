"""The embedded default (`atom-os serve`, SQLite) killed with SIGKILL mid-step: the restarted server sees
that the step's lease holder was its own earlier incarnation on this host, now dead, reclaims the step
at start and finishes the run, with the visibility timeout far longer than the test may take."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.integration_servers import HttpServer, serve
from tests.support.served import Servers, base_url, init_with_agent, start_server
from tests.workflows.conftest import wait_for


async def test_a_restart_after_sigkill_reclaims_the_interrupted_step_at_once(
    served_env: dict[str, str], servers: Servers, tmp_path: Path
) -> None:
    env = served_env
    key = await init_with_agent(env, "durable")

    api = HttpServer()
    async with serve(api.app) as url:
        first = await start_server(env, tmp_path / "first.log", servers)
        base = base_url(env)
        headers = {"Authorization": f"Bearer {key}"}
        source = f"""
name: durable
agent: durable
steps:
  - id: charge
    action: http_request
    with: {{method: POST, url: "{url}/charge", query: {{delay_after: 120}}, json: {{amount: 5}}}}
  - id: receipt
    needs: [charge]
    action: noop
    with: {{charge: "{{{{ steps.charge.output.json.id }}}}"}}
"""
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            created = await client.post("/api/workflows", json={"source": source})
            assert created.status_code == 201, created.text
            started = await client.post("/api/workflows/durable/runs", json={})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            assert run_id is not None

            async def charged() -> bool:
                return bool(api.applied)

            await wait_for(charged, 60, "the charge to be applied")
            first.kill()  # SIGKILL mid-step: the step stays `running`, its lease 600 s away
            first.wait(timeout=10)

            await start_server(env, tmp_path / "second.log", servers)

            async def finished() -> bool:
                run = await client.get(f"/api/workflow-runs/{run_id}")
                return bool(run.status_code == 200 and run.json()["status"] not in ("running", "pending"))

            await wait_for(finished, 90, "the run to finish after the restart")
            run = (await client.get(f"/api/workflow-runs/{run_id}")).json()
    assert run["status"] == "succeeded", run
    steps = {s["step_key"]: s for s in run["steps"]}
    assert steps["charge"]["attempt"] == 2  # claimed again by the restarted server
    assert steps["receipt"]["output"] == {"charge": "ch_1"}  # the replayed answer: charged once
    assert len(api.applied) == 1
