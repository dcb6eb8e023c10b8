"""Health checks as plain functions: each returns a short detail or raises with the reason."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MIN_FREE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    latency_ms: float


def run_checks(
    checks: Mapping[str, Callable[[], str]],
    *,
    on_each: Callable[[int, str], None] | None = None,
) -> list[CheckResult]:
    """Run every check, never letting one failure hide the others."""
    results = []
    for index, (name, check) in enumerate(checks.items()):
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception as error:  # a health check reports failures, it does not raise them
            detail, ok = f"{type(error).__name__}: {error}", False
        results.append(
            CheckResult(name, ok, detail, round((time.perf_counter() - started) * 1000, 2))
        )
        if on_each:
            on_each(index + 1, name)
    return results


def disk_space(path: Path, *, min_free_bytes: int = MIN_FREE_BYTES) -> str:
    path.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(path)
    detail = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {path}"
    if usage.free < min_free_bytes:
        raise RuntimeError(f"low disk space: {detail}")
    return detail


def summarize(results: list[CheckResult]) -> dict[str, Any]:
    return {
        "status": "healthy" if all(r.ok for r in results) else "degraded",
        "checks": [asdict(r) for r in results],
        "failed": [r.name for r in results if not r.ok],
    }
