"""Health endpoints through real HTTP on loopback: Atom vs a bare ASGI app in the same run.

Targets (issue 2): /health/live P50 within 1.5x of the bare app; /health/ready and /health/metrics
P50 under 5 ms. Sequential requests on one keep-alive connection, after a warm-up.
"""

from __future__ import annotations

import argparse

import httpx

from _common import atom_server, bare_server, sequential_latencies, summary, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    with bare_server() as bare, httpx.Client() as client:
        floor = summary(sequential_latencies(client, f"{bare}/", args.requests, args.warmup))
    results = {}
    with atom_server() as (base, _key), httpx.Client() as client:
        for path in ("/health/live", "/health/ready", "/health/metrics"):
            results[path] = summary(sequential_latencies(client, f"{base}{path}", args.requests, args.warmup))

    print(f"health endpoints, {args.requests} sequential requests each (ms; ratio = Atom / bare ASGI app)")
    print(f"{'endpoint':<18}{'P50':>8}{'P99':>8}{'P50 x':>8}{'P99 x':>8}  target")
    print(f"{'bare ASGI app':<18}{floor['p50']:>8.3f}{floor['p99']:>8.3f}{1:>8.2f}{1:>8.2f}  (floor)")
    for path, s in results.items():
        ratio50, ratio99 = s["p50"] / floor["p50"], s["p99"] / floor["p99"]
        if path == "/health/live":
            target = f"P50 <= 1.5x bare: {verdict(ratio50 <= 1.5)}"
        else:
            target = f"P50 < 5 ms: {verdict(s['p50'] < 5)}"
        print(f"{path:<18}{s['p50']:>8.3f}{s['p99']:>8.3f}{ratio50:>8.2f}{ratio99:>8.2f}  {target}")


if __name__ == "__main__":
    main()
