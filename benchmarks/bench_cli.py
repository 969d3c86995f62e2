"""CLI start-up: `atom-os version` and `atom-os --help` against a bare interpreter, in the same run.

Target (issue 13): each starts in <= 0.5 s. The floor is `python -c pass` with the same interpreter;
the ratio shows what Atom adds to starting Python at all. Each command runs N times, alternated with
the floor so the machine's load is shared alike.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import ATOM_OS, summary, verdict


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    commands = {"python -c pass": [sys.executable, "-c", "pass"]}
    commands["atom-os version"] = [ATOM_OS, "version"]
    commands["atom-os --help"] = [ATOM_OS, "--help"]
    for argv in commands.values():
        timed(argv)  # warm the file cache
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            samples[name].append(timed(argv) * 1000)

    floor = summary(samples["python -c pass"])
    print(f"CLI start-up, {args.runs} runs each (ms; ratio = command / bare interpreter)")
    print(f"{'command':<18}{'P50':>9}{'P99':>9}{'P50 x':>8}  target")
    print(f"{'python -c pass':<18}{floor['p50']:>9.1f}{floor['p99']:>9.1f}{1:>8.2f}  (floor)")
    for name in ("atom-os version", "atom-os --help"):
        s = summary(samples[name])
        ratio = s["p50"] / floor["p50"]
        target = f"P50 <= 500 ms: {verdict(s['p50'] <= 500)}"
        print(f"{name:<18}{s['p50']:>9.1f}{s['p99']:>9.1f}{ratio:>8.2f}  {target}")


if __name__ == "__main__":
    main()
