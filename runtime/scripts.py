"""The one way to load the runtime's Lua scripts (runtime/lua/*.lua), read once per process."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def lua(name: str) -> str:
    """The source of runtime/lua/<name>.lua."""
    return resources.files("runtime").joinpath(f"lua/{name}.lua").read_text()


def with_transition(name: str, *functions: str) -> str:
    """A script that calls the `transition` function of lua/transition_fn.lua (which keeps the
    attempt timeline through lua/history_fn.lua and advances workflows through
    lua/workflow_fn.lua), and those of the other `functions` files."""
    parts = ["history_fn", "transition_fn", "workflow_fn", *functions, name]
    return "\n".join(lua(part) for part in parts)
