"""The one import path for workers and the scheduler: `dramatiq actors` loads every job family."""

from actors import (
    maintenance,  # noqa: F401  (registers the actors)
    ml,  # noqa: F401
)
from actors.broker import broker

__all__ = ["broker"]
