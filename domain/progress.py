"""How long-running domain work reports how far it is: `progress(pct, note)`, pct in 0-100.

Jobs pass the runtime's `progress`; tests and scripts pass `quiet`.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def quiet(pct: float, note: str) -> None:
    """A Progress that reports nowhere."""
