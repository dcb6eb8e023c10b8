from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.stack import Report, Stack

pytestmark = pytest.mark.slow


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
