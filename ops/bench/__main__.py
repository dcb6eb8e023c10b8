"""`make bench`: run every benchmark in its own process and write var/bench/<name>.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = ["platform", "scheduler", "exporter", "notifications", "ml", "exports"]
OUT = Path("var/bench")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", f"ops.bench.{name}"], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            failed.append(name)
            continue
        result = json.loads(done.stdout)
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
