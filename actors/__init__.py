"""The one import path for workers and the scheduler: `dramatiq actors` loads every job family."""

from actors import (  # noqa: F401  (registers the actors)
    exports,
    ingest,
    maintenance,
    ml,
    notifications,
)
from actors.broker import broker

__all__ = ["broker"]
