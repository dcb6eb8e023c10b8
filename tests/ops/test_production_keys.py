"""Production refuses the development keys (domain/platform/keys.py): the API, a worker and the
clock stop at start-up naming the setting and how to make a key; development keeps its keys."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from domain.platform import audit, keys, sealing
from domain.platform.settings import Settings
from ops.local_redis import free_port
from tests.support.production import PRODUCTION_KEYS
from tests.support.workers import ROOT

REAL_AUDIT_KEY = PRODUCTION_KEYS["AUDIT_SUBJECT_KEY"]
REAL_PAYLOAD_KEY = PRODUCTION_KEYS["PAYLOAD_KEYS"]


def _settings(environment: str, audit_key: str, payload_keys: str) -> Settings:
    return Settings(
        environment=environment,
        audit_subject_key=SecretStr(audit_key),
        payload_keys=SecretStr(payload_keys),
    )


def test_development_and_tests_keep_the_fixed_keys() -> None:
    assert keys.problems(_settings("development", "", "")) == []
    assert keys.problems(_settings("test", "", "")) == []


@pytest.mark.parametrize(
    ("audit_key", "payload_keys", "refused"),
    [
        ("", "", ["AUDIT_SUBJECT_KEY", "PAYLOAD_KEYS"]),
        (audit.DEVELOPMENT_KEY, REAL_PAYLOAD_KEY, ["AUDIT_SUBJECT_KEY"]),
        ("short-key", REAL_PAYLOAD_KEY, ["AUDIT_SUBJECT_KEY"]),
        (REAL_AUDIT_KEY, sealing.DEVELOPMENT_KEY, ["PAYLOAD_KEYS"]),
        (REAL_AUDIT_KEY, f" , {sealing.DEVELOPMENT_KEY}", ["PAYLOAD_KEYS"]),
        # A rotation away from the development key: it may still open, never seal.
        (REAL_AUDIT_KEY, f"{REAL_PAYLOAD_KEY},{sealing.DEVELOPMENT_KEY}", []),
        (REAL_AUDIT_KEY, REAL_PAYLOAD_KEY, []),
    ],
)
def test_production_names_each_refused_key(
    audit_key: str, payload_keys: str, refused: list[str]
) -> None:
    found = keys.problems(_settings("production", audit_key, payload_keys))
    assert [problem.split(" ", 1)[0] for problem in found] == refused


def _production_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "APP_ENV": "production", "NOTIFY_BACKEND": "live", **extra}
    env.pop("ENVIRONMENT", None)  # APP_ENV is read too
    env.pop("AUDIT_SUBJECT_KEY", None)
    env.pop("PAYLOAD_KEYS", None)
    return {**env, **extra}


def test_every_entry_point_refuses_development_keys_in_production() -> None:
    # Given production settings without keys, when the API, a worker and the clock start
    commands = {
        "api": [sys.executable, "-m", "api.serve", "--port", str(free_port()), "--workers", "1"],
        "worker": [
            sys.executable,
            "-m",
            "ops.worker",
            "--queues",
            "default",
            "--threads",
            "1",
            "--processes",
            "1",
            "--metrics-port",
            str(free_port()),
        ],  # fmt: skip
        "clock": [sys.executable, "-m", "scheduler"],
    }
    # and, with real keys, the same runtime set up as a worker sets it up
    accepted = [sys.executable, "-c", "import actors; actors.setup()"]
    started = {
        name: subprocess.Popen(
            command,
            cwd=ROOT,
            env=_production_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for name, command in commands.items()
    }
    good = subprocess.Popen(
        accepted,
        cwd=ROOT,
        env=_production_env(**PRODUCTION_KEYS),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Then each stops, saying which settings and how to make a key
        for name, process in started.items():
            output, _ = process.communicate(timeout=120)
            assert process.returncode != 0, (name, output[-2000:])
            assert "refused with ENVIRONMENT/APP_ENV=production" in output, (name, output[-2000:])
            assert "AUDIT_SUBJECT_KEY is empty" in output and "PAYLOAD_KEYS is empty" in output
            assert "Fernet.generate_key()" in output, name
        output, _ = good.communicate(timeout=120)
        assert good.returncode == 0, output[-2000:]
    finally:
        for process in [*started.values(), good]:
            if process.poll() is None:
                process.kill()
                process.wait()
