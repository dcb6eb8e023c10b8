"""Prometheus rules and configs checked by promtool (Debian's `prometheus` package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[2] / "ops" / "prometheus"


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: `make test` installs it (apt package prometheus)"
    done = subprocess.run([binary, *args], capture_output=True, text=True, cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_rules_are_valid() -> None:
    import yaml

    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    count = sum(len(group["rules"]) for group in groups)
    assert f"SUCCESS: {count} rules found" in promtool("check", "rules", "rules.yml")


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    # The unit tests pass, and each alert of rules.yml appears in them, expected quiet and firing.
    assert "SUCCESS" in promtool("test", "rules", "tests/rules_test.yml")
    import yaml

    alerts = {
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    cases = yaml.safe_load((PROMETHEUS / "tests" / "rules_test.yml").read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for alert in alerts:
        outcomes = {bool(c["exp_alerts"]) for c in checks if c["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: needs a firing and a quiet case"
    for required in ("summary", "description", "dashboard"):
        for group in yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]:
            for rule in group["rules"]:
                assert required in rule["annotations"], (rule["alert"], required)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_prometheus_configs_are_valid(config: str) -> None:
    assert "SUCCESS" in promtool("check", "config", config)
