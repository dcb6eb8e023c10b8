"""Errors of the job runtime itself (job errors live in domain/errors.py)."""

from __future__ import annotations


class NotSetUp(RuntimeError):
    """A job was sent or a runtime reader used before `runtime.setup(settings)`."""
