"""`atom-os serve` (SQLite) killed with SIGKILL while signed webhooks keep arriving and their runs are
mid-step: every delivery that was answered 202 has its run, and each run finishes after the restart
with its side effect applied once. A step whose completion was recorded before the kill is not run
again; one interrupted mid-call is run again with the same idempotency key (the charge is replayed,
not repeated)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx

from atom.workflows import signing
from tests.support.integration_servers import HttpServer, serve
from tests.support.served import Servers, base_url, init_with_agent, start_server
from tests.workflows.conftest import wait_for

SECRET = "whsec-crash-90ab"
SENDERS = 4
ACCEPTED_BEFORE_KILL = 40


async def test_a_sigkill_under_webhook_load_loses_no_accepted_delivery_and_repeats_no_completed_step(
    served_env: dict[str, str], servers: Servers, tmp_path: Path
) -> None:
    env = served_env
    # Memory's background ingestion embeds finished runs while its transaction holds SQLite's write lock,
    # which stalls every writer for as long as it embeds; this test is about the webhook path alone.
    env["ATOM_MEMORY_ENABLED"] = "false"
    key = await init_with_agent(env, "collector")

    api = HttpServer()
    async with serve(api.app) as url:
        first = await start_server(env, tmp_path / "first.log", servers)
        base = base_url(env)
        source = f"""
name: collect
agent: collector
steps:
  - id: charge
    action: http_request
    with: {{method: POST, url: "{url}/charge", query: {{delay_after: 0.05}}, json: {{n: "{{{{ trigger.body.n }}}}"}}}}
triggers:
  - id: hook
    type: webhook
    secret: collect_hook
"""
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
            made = await admin.post("/api/secrets", json={"name": "collect_hook", "value": SECRET})
            assert made.status_code == 201, made.text
            created = await admin.post("/api/workflows", json={"source": source})
            assert created.status_code == 201, created.text
        path = created.json()["triggers"][0]["webhook_path"]

        accepted: dict[int, str] = {}  # delivery number -> run id, for every 202
        counter = iter(range(1_000_000))
        killed = asyncio.Event()

        async def sender() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                while not killed.is_set():
                    n = next(counter)
                    body = json.dumps({"n": n}).encode()
                    headers = {
                        **signing.headers(SECRET, str(int(time.time())), body),
                        "Content-Type": "application/json",
                    }
                    try:
                        answer = await client.post(path, content=body, headers=headers)
                    except httpx.HTTPError:
                        return  # the server died under this request: it was never answered, so never accepted
                    assert answer.status_code == 202, answer.text
                    accepted[n] = answer.json()["run_id"]

        def kill_mid_charge(entry: dict[str, object]) -> None:
            # A charge has arrived and will be applied, but its step cannot record it: the server dies now.
            if not killed.is_set() and len(accepted) >= ACCEPTED_BEFORE_KILL:
                first.kill()
                first.wait(timeout=10)
                killed.set()
                interrupted.append(str(entry["headers"].get("idempotency-key")))  # type: ignore[union-attr]

        interrupted: list[str] = []
        api.on_request = kill_mid_charge

        async def kill_when_busy() -> None:
            async def is_killed() -> bool:
                return killed.is_set()

            await wait_for(is_killed, 120, "deliveries to be accepted and a charge to be mid-call")

        await asyncio.gather(kill_when_busy(), *(sender() for _ in range(SENDERS)))
        api.on_request = None
        charged_before_restart = len(api.applied)

        await start_server(env, tmp_path / "second.log", servers)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:

            async def all_finished() -> bool:
                for run_id in accepted.values():
                    run = await admin.get(f"/api/workflow-runs/{run_id}")
                    if run.status_code != 200 or run.json()["status"] == "running":
                        return False
                return True

            await wait_for(all_finished, 120, "every accepted delivery's run to finish after the restart")
            runs = [(await admin.get(f"/api/workflow-runs/{run_id}")).json() for run_id in accepted.values()]
            cut_run = (await admin.get(f"/api/workflow-runs/{interrupted[0].split(':')[0]}")).json()

    assert len(accepted) >= ACCEPTED_BEFORE_KILL and charged_before_restart > 0
    [cut] = interrupted
    assert all(run["status"] == "succeeded" for run in runs), [r["status"] for r in runs]
    calls = Counter(r["headers"].get("idempotency-key") for r in api.requests)
    charged = Counter(api.applied)
    for run in runs:
        [step] = run["steps"]
        key_of_step = step["idempotency_key"]
        assert charged[key_of_step] == 1  # applied once, however often it was sent
        assert step["output"]["json"]["id"].startswith("ch_")
        if step["attempt"] == 1:
            assert calls[key_of_step] == 1  # recorded before the kill, or run once after: never sent again
        else:
            assert step["attempt"] == 2 and calls[key_of_step] <= 2  # interrupted mid-call: replayed once
    # the step cut mid-call ran again after the restart with the same key: the charge replayed, not repeated
    assert cut_run["status"] == "succeeded" and cut_run["steps"][0]["attempt"] == 2
    assert calls[cut] == 2 and charged[cut] == 1
