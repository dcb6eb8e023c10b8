"""The job families, one module per queue family; importing this package declares every job.

It is the one import path for workers and the scheduler. Importing it connects to nothing: the
entry point calls `runtime.setup(settings)`. For Dramatiq's own CLI, `dramatiq actors:setup`
builds the runtime from the environment; plain `dramatiq actors` does the same, since that CLI
gives a module path no other way to build a broker.
"""

from __future__ import annotations

import sys

import runtime
from actors import (  # noqa: F401  (declares the jobs)
    exports,
    gdpr,
    ingest,
    maintenance,
    ml,
    notifications,
)


def setup() -> runtime.Runtime:
    """The runtime from the environment and `.env` (Dramatiq's CLI calls this: `actors:setup`)."""
    from domain.platform.settings import Settings

    return runtime.setup(Settings())


def _under_dramatiq_cli() -> bool:
    """True in a worker process of `dramatiq actors` (the module path without `:setup`)."""
    cli = sys.modules.get("dramatiq.cli")
    return cli is not None and any(arg == __name__ for arg in sys.argv[1:])


if _under_dramatiq_cli():
    setup()
