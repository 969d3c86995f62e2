"""Run every benchmark (`make bench`), or those named: `python benchmarks/run.py health governance`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
        if not scripts:
            print(f"no benchmark named {names}; have: {[s.stem for s in sorted(HERE.glob('bench_*.py'))]}")
            return 2
    failed = 0
    for script in scripts:
        print(f"\n=== {script.stem}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], cwd=HERE, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
