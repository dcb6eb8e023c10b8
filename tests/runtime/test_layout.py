"""The runtime's one public face, and the direction of imports between the top-level packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Who may import whom (a package always may import itself). domain/ imports none of them.
ALLOWED = {
    "domain": set(),
    "runtime": {"domain"},
    "actors": {"domain", "runtime"},
    "scheduler": {"domain", "runtime", "actors"},
    "api": {"domain", "runtime", "actors", "scheduler"},
    "ops": {"domain", "runtime", "actors", "scheduler", "api"},
}
#: Outside runtime/ (and its own tests), code imports `runtime` only.
FACE_ONLY = ("actors", "api", "scheduler", "ops", "tests")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_outside_runtime_only_its_public_face_is_imported() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for package in FACE_ONLY
        for path in _sources(package)
        if not path.is_relative_to(ROOT / "tests" / "runtime")
        for line, module in _imports(path)
        if module.startswith("runtime.")
    ]
    assert not offenders, "import `from runtime import ...` instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package: str) -> None:
    others = set(ALLOWED) - {package} - ALLOWED[package]
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in _sources(package)
        for line, module in _imports(path)
        if module.split(".")[0] in others
    ]
    assert not offenders, f"{package}/ may import only {sorted(ALLOWED[package])}:\n" + "\n".join(
        offenders
    )


def test_importing_the_jobs_connects_to_nothing_and_reads_no_settings() -> None:
    # Given an environment whose Redis and database do not exist (any connection would fail)
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "DATABASE_URL": "sqlite:////nonexistent/dir/never.db",
        "PYTHONPATH": str(ROOT),
    }
    probe = """
import sys
import domain.platform.settings as settings
read = []
settings.Settings.__init__ = lambda *a, **k: read.append(1) or (_ for _ in ()).throw(
    AssertionError("settings read at import"))
import actors, api.main, scheduler.clock, ops.exporter, ops.cli
import runtime, dramatiq
assert not read
assert dramatiq.broker.global_broker is None, "a broker was built at import"
try:
    runtime.broker()
except runtime.NotSetUp as error:
    print("not set up:", error)
else:
    raise AssertionError("runtime set up at import")
"""
    # When every package is imported, Then no settings object exists and no broker either
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "not set up" in done.stdout


def test_no_public_name_is_also_a_module_of_the_runtime() -> None:
    # A submodule, once imported, becomes an attribute of the package: `from runtime import x`
    # would then give the module `runtime.x`, not the exported function `x`.
    import pkgutil

    import runtime

    modules = {info.name for info in pkgutil.iter_modules(runtime.__path__)}
    assert not modules & set(runtime.__all__)
    for module in sorted(modules):
        __import__(f"runtime.{module}")
    for name, (module, attribute) in runtime._EXPORTS.items():
        assert getattr(runtime, name) is getattr(sys.modules[module], attribute), name
