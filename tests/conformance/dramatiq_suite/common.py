"""What Dramatiq's tests import from their `tests/common.py`, which its sdist does not ship."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dramatiq import Worker


@contextmanager
def worker(*args: Any, **kwargs: Any) -> Iterator[Worker]:
    started = Worker(*args, **kwargs)
    try:
        started.start()
        yield started
    finally:
        started.stop()


skip_in_ci = pytest.mark.skipif(os.getenv("GITHUB_ACTION") is not None, reason="skipped in CI")
skip_on_windows = pytest.mark.skipif(platform.system() == "Windows", reason="not on Windows")
skip_on_pypy = pytest.mark.skipif(
    platform.python_implementation() == "PyPy", reason="time limits need CPython"
)
