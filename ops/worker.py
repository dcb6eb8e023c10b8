"""Start a Dramatiq worker for some queues with its own Prometheus port (one per Procfile line).

python -m ops.worker --queues ml_heavy --threads 1 --metrics-port 9191
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops.worker", description=__doc__)
    parser.add_argument("--queues", nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--metrics-port", type=int, required=True)
    args = parser.parse_args(argv)

    # Dramatiq's Prometheus middleware keeps multiprocess samples in a directory read at import:
    # one directory per port, emptied at start so counters restart with the process.
    prom_dir = os.path.join(tempfile.gettempdir(), f"gaveurs-prom-{args.metrics_port}")
    shutil.rmtree(prom_dir, ignore_errors=True)
    os.makedirs(prom_dir)
    os.environ["dramatiq_prom_port"] = str(args.metrics_port)
    os.environ["dramatiq_prom_db"] = prom_dir

    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    dramatiq_args = make_argument_parser().parse_args(
        [
            "actors:setup",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            "--queues",
            *args.queues,
        ]
    )
    return int(dramatiq_main(dramatiq_args) or 0)


if __name__ == "__main__":
    sys.exit(main())
