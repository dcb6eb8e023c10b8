"""`make bench`: run every benchmark in its own process and write var/bench/<name>.json.

python -m ops.bench              # the benchmarks of `make bench` (about 40 minutes here)
python -m ops.bench --long       # `make bench-long`: the million jobs, and crash recovery
                                 # with the stock side's wait capped at 10 minutes
python -m ops.bench api memory   # only these
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: Name -> extra arguments. Crash recovery caps stock Dramatiq's wait at 5 min here, 10 in --long.
BENCHMARKS: dict[str, list[str]] = {
    "platform": [],
    "scheduler": [],
    "exporter": [],
    "notifications": [],
    "ml": [],
    "exports": [],
    "throughput": [],
    "peers": [],
    "memory": [],
    "api": [],
    "console": [],
    "history": [],
    "search": [],
    "recovery": ["--stock-cap-s", "300"],
    "workflows": [],
    "batching": [],
    "scaleout": [],
}
LONG_BENCHMARKS: dict[str, list[str]] = {
    "million": [],
    "recovery": ["--stock-cap-s", "600"],
}
OUT = Path("var/bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops.bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all of make bench)")
    parser.add_argument("--long", action="store_true", help="the long benchmarks instead")
    args = parser.parse_args(argv)
    table = LONG_BENCHMARKS if args.long else BENCHMARKS
    known = {**LONG_BENCHMARKS, **BENCHMARKS}  # by name, a benchmark of both gets make bench's
    unknown = set(args.names) - set(known)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}")
    names = args.names or list(table)
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        extra = table.get(name, known[name])
        print(f"== {name}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", f"ops.bench.{name}", *extra], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            failed.append(name)
            continue
        result = json.loads(done.stdout)
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
