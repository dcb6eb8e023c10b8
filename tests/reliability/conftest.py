from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.stack import SCALE, Report, Stack

pytestmark = pytest.mark.slow


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """At RELIABILITY_SCALE n (`make soak`), a scenario may take n times its usual time."""
    if SCALE == 1:
        return
    for item in items:
        if "tests/reliability/" in item.nodeid and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300 * SCALE))


@pytest.fixture()
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Build a scenario's private stack (closed after the test, whatever happened)."""
    made: list[Stack] = []

    def make(**options: Any) -> Stack:
        stack = Stack(tmp_path / f"stack{len(made)}", **options)
        made.append(stack)
        return stack

    (tmp_path / "stack0").mkdir()
    for i in range(1, 4):
        (tmp_path / f"stack{i}").mkdir()
    yield make
    for stack in made:
        stack.close()


@pytest.fixture()
def show(capsys: pytest.CaptureFixture[str]) -> Callable[[Report], None]:
    def print_report(report: Report) -> None:
        with capsys.disabled():
            print("\n" + report.line())

    return print_report
