"""Streaming overhead: what Atom adds between a chunk leaving the provider and reaching a WebSocket client.

A local OpenAI-compatible provider (`_llm_provider.py`, its own process) stamps every chunk with the
monotonic time it was written. The floor is the provider-direct path measured in the same run: a
client streaming from the provider itself (HTTP + SSE + JSON, as an SDK does). The Atom path is a
real `atom-os serve` (SQLite) with that provider configured, an AUTONOMOUS agent, and a client on
`/ws/chat/AGENT`: OpenAI adapter -> router -> gateway -> agent runtime -> bounded channel -> WebSocket.
Sequential floor and Atom chats alternate, so both see the same load on a shared machine.

Targets (issues 4 and 13): P50 added <= 0.2 ms (printed with the ratio to the provider-direct path); 200
concurrent streaming chats with no error, no chunk lost (every stamp arrives, in order) and P99 added
<= 10 ms over the provider-direct path's P99 at the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from _common import HERE, atom_server, free_port, percentile, verdict

MODEL = "bench-model"
RECV_TIMEOUT = 60.0  # a stuck stream is a failure, never a hang
CONCURRENT_P99_ADDED_MS = 10.0  # issue 13


def _stamps(text: str) -> list[int]:
    return [int(part) for part in text.split(";") if part]


async def direct_stream(provider: str, chunks: int, gap_ms: float) -> tuple[list[float], int]:
    """Latencies (ms) of one provider-direct stream (plain asyncio socket, SSE + JSON), and stamps received."""
    host, port = provider.removeprefix("http://").split(":")
    body = json.dumps(
        {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"chunks={chunks} gap_ms={gap_ms}"}]}
    ).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    latencies: list[float] = []
    received = 0
    try:
        while line := await asyncio.wait_for(reader.readline(), RECV_TIMEOUT):
            if not line.startswith(b"data: {"):
                continue
            now = time.monotonic_ns()
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                for stamp in _stamps(choice.get("delta", {}).get("content") or ""):
                    latencies.append((now - stamp) / 1e6)
                    received += 1
    finally:
        writer.close()
    return latencies, received


@dataclass(frozen=True)
class ChatEndpoint:
    url: str
    key: str  # sent in the X-API-Key header: a key in the URL is refused


async def atom_chat(
    endpoint: ChatEndpoint,
    runs: int,
    chunks: int,
    gap_ms: float,
    ready: asyncio.Barrier | None = None,
    offset: float = 0.0,
) -> tuple[list[float], list[str]]:
    """Latencies (ms) of `runs` chats on one WebSocket, and any problems seen (errors, lost chunks)."""
    latencies: list[float] = []
    problems: list[str] = []
    async with websockets.connect(endpoint.url, additional_headers={"X-API-Key": endpoint.key}, max_size=None) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
        if hello.get("type") != "session":
            return latencies, [f"no session: {hello}"]
        if ready is not None:  # every client connected: the chats then start together (spread over one gap)
            await ready.wait()
            await asyncio.sleep(offset)
        for _ in range(runs):
            await ws.send(json.dumps({"type": "message", "content": f"chunks={chunks} gap_ms={gap_ms}"}))
            stamps: list[int] = []
            while True:
                raw = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
                now = time.monotonic_ns()
                event = json.loads(raw)
                kind = event.get("type")
                if kind == "token":
                    for stamp in _stamps(event["text"]):
                        latencies.append((now - stamp) / 1e6)
                        stamps.append(stamp)
                elif kind == "error":
                    problems.append(f"{event.get('code')}: {event.get('message')}")
                elif kind == "done":
                    if event.get("status") != "completed":
                        problems.append(f"run {event.get('status')}: {event.get('error')}")
                    break
            if len(stamps) != chunks or stamps != sorted(stamps):
                problems.append(f"chunks lost or reordered: {len(stamps)}/{chunks}")
    return latencies, problems


def setup_atom(base: str, key: str, provider: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        created = http.post(
            "/api/llm/providers",
            json={"name": "bench", "kind": "openai", "base_url": f"{provider}/v1", "models": [MODEL]},
        )
        created.raise_for_status()
        agent = http.post("/api/agents", json={"name": "streamer", "confidence": 0.95})
        agent.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=400, help="chunks per sequential chat")
    parser.add_argument("--runs", type=int, default=5, help="sequential chats (after one warm-up)")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="provider delay between chunks")
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--concurrent-chunks", type=int, default=30)
    parser.add_argument("--concurrent-gap-ms", type=float, default=100.0)
    args = parser.parse_args()

    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(HERE / "_llm_provider.py"), str(port)], env=dict(os.environ))
    try:
        time.sleep(0.5)
        asyncio.run(_direct_warmup(provider))
        costs = asyncio.run(_parse_cost(provider))
        with atom_server({"ATOM_HTTP_TOOL_ALLOW_PRIVATE": "false"}) as (base, key):
            setup_atom(base, key, provider)
            endpoint = ChatEndpoint(base.replace("http://", "ws://") + "/ws/chat/streamer", key)
            floor, seq, problems = asyncio.run(_sequential(provider, endpoint, args))
            floor_conc = asyncio.run(_direct_concurrent(provider, args))
            conc, found, lost = asyncio.run(_atom_concurrent(endpoint, args))
            problems += found
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    f50, f99 = percentile(floor, 50), percentile(floor, 99)
    a50, a99 = percentile(seq, 50), percentile(seq, 99)
    added50 = a50 - f50
    print(f"streaming: {args.runs} chats x {args.chunks} chunks, {args.gap_ms:g} ms apart (ms per chunk)")
    print(f"{'path':<34}{'P50':>9}{'P99':>9}{'P50 x':>8}  target")
    print(f"{'provider direct (floor)':<34}{f50:>9.3f}{f99:>9.3f}{1:>8.2f}  (floor)")
    print(
        f"{'through Atom WebSocket':<34}{a50:>9.3f}{a99:>9.3f}{a50 / f50:>8.2f}  "
        f"P50 added {added50:.3f} ms <= 0.2 ms: {verdict(added50 <= 0.2)}"
    )
    adapter_cpu, sdk_cpu, raw_cpu = costs
    print(
        f"  where it goes: the OpenAI adapter spends {adapter_cpu:.0f} us CPU per chunk (SDK request, SSE + JSON "
        f"read from its raw body; the SDK's typed chunk stream: {sdk_cpu:.0f} us; a bare asyncio socket: "
        f"{raw_cpu:.0f} us)"
    )
    c50f, c99f = percentile(floor_conc, 50), percentile(floor_conc, 99)
    c50, c99 = percentile(conc, 50), percentile(conc, 99)
    added99 = c99 - c99f
    ok = not problems and lost == 0 and added99 <= CONCURRENT_P99_ADDED_MS
    print(
        f"\n{args.concurrent} concurrent chats x {args.concurrent_chunks} chunks, {args.concurrent_gap_ms:g} ms apart"
    )
    print(f"{'provider direct (floor)':<34}{c50f:>9.3f}{c99f:>9.3f}{1:>8.2f}")
    print(
        f"{'through Atom WebSocket':<34}{c50:>9.3f}{c99:>9.3f}{c50 / c50f:>8.2f}  "
        f"P99 added {added99:.3f} ms <= {CONCURRENT_P99_ADDED_MS:g} ms, errors {len(problems)}, "
        f"chunks lost {lost}: {verdict(ok)}"
    )
    for problem in problems[:5]:
        print(f"  {problem}")


async def _parse_cost(provider: str, chunks: int = 2000) -> tuple[float, float, float]:
    """CPU microseconds per chunk: our OpenAI adapter, the SDK's own typed chunk stream, a bare socket reader."""
    import openai

    from atom.llm.providers.base import ChatRequest, Message, TextDelta
    from atom.llm.providers.openai_compat import OpenAICompatProvider

    prompt = f"chunks={chunks} gap_ms=0"
    adapter = OpenAICompatProvider(name="bench", base_url=f"{provider}/v1", api_key="none")
    request = ChatRequest(model=MODEL, messages=(Message(role="user", content=prompt),))
    started, seen = time.process_time(), 0
    async for event in adapter.stream_chat(request):
        seen += isinstance(event, TextDelta)
    ours = (time.process_time() - started) / max(seen, 1) * 1e6
    await adapter.aclose()
    client = openai.AsyncOpenAI(base_url=f"{provider}/v1", api_key="none", max_retries=0)
    started, seen = time.process_time(), 0
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
    )
    async for chunk in stream:
        seen += bool(chunk.choices and chunk.choices[0].delta.content)
    sdk = (time.process_time() - started) / max(seen, 1) * 1e6
    await client.close()
    started = time.process_time()
    _latencies, seen = await direct_stream(provider, chunks, 0)
    raw = (time.process_time() - started) / max(seen, 1) * 1e6
    return ours, sdk, raw


def _offset(i: int, args: Any) -> float:
    """Start times spread evenly over one chunk gap (both paths alike), so chunks do not arrive in bursts."""
    return (i / args.concurrent) * args.concurrent_gap_ms / 1000


async def _direct_warmup(provider: str) -> None:
    await direct_stream(provider, 20, 1)


async def _sequential(provider: str, endpoint: ChatEndpoint, args: Any) -> tuple[list[float], list[float], list[str]]:
    """Floor and Atom chats, one after the other in turn (after an Atom warm-up: imports, caches, client)."""
    await atom_chat(endpoint, 1, 50, 1)
    floor: list[float] = []
    seq: list[float] = []
    problems: list[str] = []
    for _ in range(args.runs):
        latencies, _n = await direct_stream(provider, args.chunks, args.gap_ms)
        floor.extend(latencies)
        latencies, found = await atom_chat(endpoint, 1, args.chunks, args.gap_ms)
        seq.extend(latencies)
        problems.extend(found)
    return floor, seq, problems


async def _direct_concurrent(provider: str, args: Any) -> list[float]:
    async def staggered(i: int) -> tuple[list[float], int]:
        await asyncio.sleep(_offset(i, args))
        return await direct_stream(provider, args.concurrent_chunks, args.concurrent_gap_ms)

    results = await asyncio.gather(*[staggered(i) for i in range(args.concurrent)])
    return [x for latencies, _n in results for x in latencies]


async def _atom_concurrent(endpoint: ChatEndpoint, args: Any) -> tuple[list[float], list[str], int]:
    ready = asyncio.Barrier(args.concurrent)

    async def staggered(i: int) -> tuple[list[float], list[str]]:
        return await atom_chat(
            endpoint, 1, args.concurrent_chunks, args.concurrent_gap_ms, ready=ready, offset=_offset(i, args)
        )

    results = await asyncio.gather(*[staggered(i) for i in range(args.concurrent)], return_exceptions=True)
    conc: list[float] = []
    problems: list[str] = []
    lost = 0
    for result in results:
        if isinstance(result, BaseException):
            problems.append(f"{type(result).__name__}: {result}")
            continue
        latencies, found = result
        conc.extend(latencies)
        problems.extend(found)
        lost += args.concurrent_chunks - len(latencies) if not found else 0
    return conc, problems, lost


if __name__ == "__main__":
    main()
