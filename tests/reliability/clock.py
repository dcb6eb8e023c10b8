"""The clock as `python -m scheduler` runs it, with the fault-suite jobs declared too (a
production clock declares every job): python -m tests.reliability.clock [its options]"""

from __future__ import annotations

import sys

import tests.reliability.jobs  # noqa: F401  (declares the suite's jobs)
from scheduler.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
