"""Middleware signals sent only to the middleware that handle them.

Dramatiq's broker calls a signal's hook on every middleware, and most are `Middleware`'s empty
defaults: with the ~20 middleware of runtime/build.py, a no-op job sends four signals (before
and after process_message, before and after ack), ~80 calls of which ~60 do nothing, under the
GIL every worker thread waits for. Here each signal's real hooks are listed once per middleware
list (rebuilt when the list changes); errors are handled as Dramatiq's `emit_*` handle them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dramatiq.broker import Broker
from dramatiq.middleware import Middleware, MiddlewareError

Hook = tuple[Middleware, Callable[..., None]]


def handles(middleware: Middleware, hook: str) -> bool:
    """False when `middleware`'s `hook` is Middleware's empty default."""
    default = getattr(Middleware, hook, None)
    if default is None:
        return hasattr(middleware, hook)  # a signal Middleware does not define
    if hook in vars(middleware):
        return True  # set on the instance
    return getattr(type(middleware), hook, None) is not default


class SelectiveEmit(Broker):
    """A Broker mixin: `emit_before`/`emit_after` skip middleware without the signal's hook."""

    _hook_lists: dict[str, tuple[tuple[Middleware, ...], list[Hook]]]

    def _hooks(self, name: str, *, reverse: bool) -> list[Hook]:
        middleware = tuple(self.middleware)
        lists = self.__dict__.setdefault("_hook_lists", {})
        cached = lists.get(name)
        if cached is None or cached[0] != middleware:
            ordered = reversed(middleware) if reverse else middleware
            hooks = [(m, getattr(m, name)) for m in ordered if handles(m, name)]
            cached = lists[name] = (middleware, hooks)
        return cached[1]

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        # A MiddlewareError (SkipMessage) from a before-hook stops the signal, as in Dramatiq.
        self._emit("before_" + signal, args, kwargs, reverse=False, passes=MiddlewareError)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        self._emit("after_" + signal, args, kwargs, reverse=True, passes=())

    def _emit(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        reverse: bool,
        passes: type[Exception] | tuple[()],
    ) -> None:
        for middleware, hook in self._hooks(name, reverse=reverse):
            try:
                hook(self, *args, **kwargs)
            except passes:
                raise
            except Exception:
                self.logger.critical(
                    "Unexpected failure in %s of %r.", name, middleware, exc_info=True
                )
