"""Signals reach the middleware that handle them, in Dramatiq's order, with its error handling
(runtime/hooks.py), on the runtime's real broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.middleware import Middleware, SkipMessage

from runtime import broker


class Calls(Middleware):
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    def before_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.seen.append(f"before {self.name}")

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.seen.append(f"after {self.name}")


class Failing(Middleware):
    def before_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        raise ValueError("a bug in a middleware")

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        raise SkipMessage()


@pytest.fixture()
def added() -> Iterator[list[Middleware]]:
    """Middleware added to the runtime's broker for one test."""
    mine: list[Middleware] = []
    yield mine
    for middleware in mine:
        broker().middleware.remove(middleware)


def test_hooks_run_in_dramatiq_order_and_follow_changes(added: list[Middleware]) -> None:
    seen: list[str] = []
    first, second = Calls("first", seen), Calls("second", seen)
    # Given a middleware added, then a signal sent (which lists the hooks), then another added
    added.append(first)
    broker().add_middleware(first)
    broker().emit_before("ack", None)
    added.append(second)
    broker().add_middleware(second)
    # When the signals are sent again
    seen.clear()
    broker().emit_before("ack", None)
    broker().emit_after("ack", None)
    # Then both are called, before-hooks in list order and after-hooks in reverse
    assert seen == ["before first", "before second", "after second", "after first"]


def test_a_failing_hook_is_logged_and_the_others_still_run(
    added: list[Middleware], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    for middleware in (Failing(), Calls("next", seen)):
        added.append(middleware)
        broker().add_middleware(middleware)
    broker().emit_before("ack", None)
    broker().emit_after("ack", None)
    assert seen == ["before next", "after next"]
    assert "Unexpected failure in before_ack" in caplog.text
    assert "Unexpected failure in after_ack" in caplog.text


def test_a_middleware_error_from_a_before_hook_stops_the_signal(added: list[Middleware]) -> None:
    class Skip(Middleware):
        def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
            raise SkipMessage()

    added.append(Skip())
    broker().add_middleware(added[0], before=type(broker().middleware[0]))
    with pytest.raises(SkipMessage):
        broker().emit_before("process_message", None)
