"""Guidance on the hot paths, in process: what the run tracker adds to each streamed token, and what
classifying an error costs.

- tracker: the agent runtime sends every event through `RunTracker` (docs/guidance.md). A token is
  forwarded and skipped at once; the floor is calling the client's `emit` directly. Measured on
  tokens only (the events that are many); the few other events schedule a write off the run's path.
- classify: RULES.md's categories by status code, then message patterns; the floor is a dict lookup
  of the status code alone. A message that matches nothing is the worst case (every pattern tried).

Target: the tracker adds <= 1 us per token; classifying a 300-character message that matches nothing
(the worst case) <= 100 us.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from _common import verdict
from atom.guidance.classify import STATUS_CATEGORIES, classify
from atom.guidance.progress import AgentRunProgress
from atom.guidance.tracker import RunTracker


def per_call_ns(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    received: list[object] = []
    forward = received.append
    progress = AgentRunProgress(execution_id="e", agent_id="a", agent_name="bench", task="t", max_steps=8)
    tracker = RunTracker(db=None, progress=progress, forward=forward)  # type: ignore[arg-type]  # tokens never write
    token = {"type": "token", "text": "hello "}
    message = ("upstream said: " + "the thing happened again and again " * 8)[:300]

    def bare() -> None:
        forward(token)

    tracked_emit = tracker.emit

    def tracked() -> None:
        tracked_emit(token)

    def lookup() -> object:
        return STATUS_CATEGORIES.get(500)

    def classified() -> object:
        return classify(status_code=500, message=message)

    figures: dict[str, list[float]] = {"bare emit": [], "tracked emit": [], "dict lookup": [], "classify": []}
    for _ in range(args.rounds):  # alternated, so the machine's load is shared alike
        figures["bare emit"].append(per_call_ns(bare, args.calls))
        figures["tracked emit"].append(per_call_ns(tracked, args.calls))
        figures["dict lookup"].append(per_call_ns(lookup, args.calls))
        figures["classify"].append(per_call_ns(classified, args.calls // 10))
        received.clear()
    best = {name: min(values) for name, values in figures.items()}
    added = best["tracked emit"] - best["bare emit"]
    print(f"Guidance in process, best of {args.rounds} rounds (ns per call; ratio to its floor)")
    print(f"{'what':<14}{'ns':>10}{'x floor':>9}  target")
    print(f"{'bare emit':<14}{best['bare emit']:>10.0f}{1:>9.2f}  (floor)")
    ratio = best["tracked emit"] / best["bare emit"]
    print(
        f"{'tracked emit':<14}{best['tracked emit']:>10.0f}{ratio:>9.2f}  adds <= 1 us/token: {verdict(added <= 1000)}"
    )
    print(f"{'dict lookup':<14}{best['dict lookup']:>10.0f}{1:>9.2f}  (floor)")
    ratio = best["classify"] / best["dict lookup"]
    print(f"{'classify':<14}{best['classify']:>10.0f}{ratio:>9.1f}  <= 100 us: {verdict(best['classify'] <= 100_000)}")


if __name__ == "__main__":
    main()
