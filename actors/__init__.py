"""The one import path for workers and the scheduler: `dramatiq actors` loads every job family."""

from actors import ingest, maintenance, ml, notifications  # noqa: F401  (registers the actors)
from actors.broker import broker

__all__ = ["broker"]
