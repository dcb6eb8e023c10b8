"""Dramatiq's own broker tests, run against our broker (README "Dramatiq's own broker tests").

The pinned dramatiq's source distribution is fetched from the package registry with pip on the
first run and kept under var/conformance/ (later runs are offline). Its tests/ are unpacked
beside our conftest (dramatiq_suite/suite_conftest.py), which builds the broker of
`runtime.build_broker` on a real redis-server, and run in a pytest subprocess: their fixtures,
module names and global broker must not mix with this suite's.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.support.workers import ROOT

#: ~80 s: `make soak` runs it (GAVEURS_SOAK=1), `make test` leaves it out for its 20-minute
#: budget; run it after any change to runtime/consumer.py or the broker's Lua.
pytestmark = [pytest.mark.slow, pytest.mark.soak]

VERSION = importlib.metadata.version("dramatiq")
CACHE = ROOT / "var" / "conformance"
OURS = Path(__file__).parent / "dramatiq_suite"
#: Dramatiq's Redis-broker tests, and those it parametrises by backend (result and rate-limiter
#: backends: ours are its Redis backends on our client). Two groups, run side by side (each
#: mostly waits), each with its own redis-server.
GROUPS = [
    ["tests/test_redis.py"],
    [
        "tests/test_results.py",
        "tests/test_composition.py",
        "tests/test_barrier.py",
        "tests/test_bucket_rate_limiter.py",
        "tests/test_concurrent_rate_limiter.py",
        "tests/test_window_rate_limiter.py",
    ],
]
#: Tests skipped by name, each with its reason; the README lists the same.
DELIBERATE = {
    "test_redis_broker_can_connect_via_url": (
        "builds Dramatiq's stock RedisBroker on 127.0.0.1:6379, not our broker; the suite's "
        "redis-server runs on a free port"
    ),
    "test_redis_broker_can_connect_via_client": (
        "builds Dramatiq's stock RedisBroker on 127.0.0.1:6379, not our broker; the suite's "
        "redis-server runs on a free port"
    ),
}
#: Fewer tests than this means the sdist changed shape: fail rather than pass on nothing.
MIN_TESTS = 60


def _pip() -> list[str]:
    """A pip to download with: the tools venv's (make install), else the system python's, else
    one in a throw-away venv made by uv."""
    tools_pip = ROOT / ".tools" / "bin" / "pip"
    if tools_pip.exists():
        return [str(tools_pip)]
    python3 = shutil.which("python3")
    if python3:
        probe = subprocess.run([python3, "-m", "pip", "--version"], capture_output=True)
        if probe.returncode == 0:
            return [python3, "-m", "pip"]
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    venv = CACHE / "pip-venv"
    subprocess.run([uv, "venv", "-q", "--seed", str(venv)], check=True)
    return [str(venv / "bin" / "pip")]


def fetch_sdist() -> Path:
    """The pinned dramatiq's sdist, downloaded once into var/conformance/."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"dramatiq-{VERSION}.tar.gz"))
    if found:
        return found[0]
    command = [*_pip(), "download", f"dramatiq=={VERSION}", "--no-binary", ":all:", "--no-deps"]
    done = subprocess.run([*command, "-q", "-d", str(CACHE)], capture_output=True, text=True)
    sdist = CACHE / f"dramatiq-{VERSION}.tar.gz"
    if done.returncode != 0 or not sdist.exists():
        pytest.fail(f"could not download dramatiq {VERSION}'s sdist: {done.stderr[-2000:]}")
    return sdist


def unpack(sdist: Path, into: Path) -> Path:
    """Its tests/ beside our conftest.py and common.py; returns the suite's root."""
    top = f"dramatiq-{VERSION}/tests/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(top) and m.isfile()]
        archive.extractall(into, members=members, filter="data")
    root = into / f"dramatiq-{VERSION}"
    # Not named conftest.py here: this suite's pytest would load it for tests/conformance/.
    shutil.copy(OURS / "suite_conftest.py", root / "tests" / "conftest.py")
    shutil.copy(OURS / "common.py", root / "tests" / "common.py")
    (root / "tests" / "__init__.py").touch()
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def test_dramatiq_broker_tests_pass_against_our_broker(tmp_path: Path) -> None:
    # Given Dramatiq's own tests for the pinned version, with our broker in their fixtures
    suite = unpack(fetch_sdist(), tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GAVEURS_CONFORMANCE_SKIPS": "\n".join(f"{k}={v}" for k, v in DELIBERATE.items()),
    }
    # When they run
    running = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                *("-c", str(suite / "pytest.ini"), "--rootdir", str(suite)),
                *("-p", "no:randomly", "-p", "no:cacheprovider", "-q", "--timeout", "120"),
                f"--junitxml={tmp_path / f'report{index}.xml'}",
                *files,
            ],
            cwd=suite,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index, files in enumerate(GROUPS)
    ]
    try:
        outputs = [process.communicate(timeout=280)[0] for process in running]
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()  # timed out: its fixtures' redis-server stops with its session
                process.wait()
    # Then every one passes but the deliberate differences, which are skipped by name
    for process, output in zip(running, outputs, strict=True):
        assert process.returncode == 0, output[-10000:]
    cases = [
        case
        for index in range(len(GROUPS))
        for case in ElementTree.parse(tmp_path / f"report{index}.xml").getroot().iter("testcase")
    ]
    skipped = {case.get("name", "") for case in cases if case.find("skipped") is not None}
    assert skipped == set(DELIBERATE), outputs[0][-4000:]
    assert len(cases) >= MIN_TESTS, "\n".join(output[-2000:] for output in outputs)
