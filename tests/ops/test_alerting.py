"""The Alertmanager config: valid for amtool as shipped and as rendered, routed by severity and
queue, and refused at render time when it could not deliver an e-mail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from domain.platform.settings import Settings
from ops.alerting import SOURCE, AlertingConfigError, build, main, render


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    assert binary, "amtool missing: `make test` installs it (apt package prometheus-alertmanager)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)


def _settings(**values: object) -> Settings:
    defaults: dict[str, object] = {"alert_email_to": "oncall@coop.example"}
    return Settings(**{**defaults, **values})  # type: ignore[arg-type]


def test_the_shipped_config_passes_amtool() -> None:
    done = amtool("check-config", str(SOURCE / "alertmanager.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 receivers" in done.stdout


def test_a_malformed_config_fails_amtool(tmp_path: Path) -> None:
    # Given the shipped config with a route naming a receiver that does not exist,
    config = yaml.safe_load((SOURCE / "alertmanager.yml").read_text())
    config["route"]["routes"][0]["receiver"] = "nobody"
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(yaml.safe_dump(config))
    # then amtool refuses it and says why.
    done = amtool("check-config", str(broken))
    assert done.returncode != 0
    assert "nobody" in done.stdout + done.stderr


def test_the_rendered_config_carries_the_smtp_settings_and_passes_amtool(tmp_path: Path) -> None:
    # Given the SMTP settings of the notification jobs and two recipients,
    settings = _settings(
        alert_email_to="a@coop.example, b@coop.example",
        alert_webhook_url="http://127.0.0.1:9/hook",
        alert_runbook_base_url="https://git.coop.example/gaveurs/blob/main/",
        smtp_host="smtp.coop.example",
        smtp_port=587,
        smtp_user="alerts",
        smtp_password="s3cret",
    )
    # when the config is rendered,
    out = render(settings, out=tmp_path / "am" / "alertmanager.yml")
    # then amtool accepts it, it holds the server, the sender and both recipients,
    done = amtool("check-config", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(out.read_text())
    assert config["global"]["smtp_smarthost"] == "smtp.coop.example:587"
    assert config["global"]["smtp_from"] == settings.smtp_sender
    assert config["global"]["smtp_require_tls"] is True
    assert config["global"]["smtp_auth_password"] == "s3cret"
    for receiver in config["receivers"]:
        assert receiver["email_configs"][0]["to"] == "a@coop.example, b@coop.example"
        assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:9/hook"
    # only its owner can read it (the SMTP password), and runbook links get the base URL.
    assert out.stat().st_mode & 0o077 == 0
    links = (out.parent / "templates" / "links.tmpl").read_text()
    assert "https://git.coop.example/gaveurs/blob/main/" in links


def test_without_a_webhook_only_email_is_configured(tmp_path: Path) -> None:
    config = build(_settings(), templates_dir=tmp_path)
    assert all("webhook_configs" not in r for r in config["receivers"])
    assert all(r["email_configs"][0]["to"] == "oncall@coop.example" for r in config["receivers"])


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"alert_email_to": " , "}, "ALERT_EMAIL_TO"),
        ({"smtp_host": " "}, "SMTP_HOST"),
        ({"smtp_security": "tls", "smtp_port": 587}, "SMTP_PORT=465"),
    ],
)
def test_a_contact_point_that_cannot_deliver_is_a_start_up_error(
    values: dict[str, object], reason: str, tmp_path: Path
) -> None:
    with pytest.raises(AlertingConfigError, match=reason):
        build(_settings(**values), templates_dir=tmp_path)


def test_the_command_line_refuses_missing_recipients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from domain.platform.settings import get_settings

    monkeypatch.setenv("ALERT_EMAIL_TO", "")
    get_settings.cache_clear()
    try:
        assert main(["render", "--out", str(tmp_path / "a.yml")]) == 2
    finally:
        get_settings.cache_clear()
    assert "ALERT_EMAIL_TO is empty" in capsys.readouterr().err
    assert not (tmp_path / "a.yml").exists()


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=GaveursSchedulerStale"], "oncall"),
        (["severity=critical", "alertname=GaveursQueueWithoutConsumer", "queue=exports"], "oncall"),
        (
            ["severity=warning", "alertname=GaveursBacklogTooDeep", "queue=notifications_urgent"],
            "oncall",
        ),  # fmt: skip
        (["severity=warning", "alertname=GaveursBacklogTooDeep", "queue=exports"], "team"),
        (["severity=warning", "alertname=GaveursClockSkew"], "team"),
    ],
)
def test_routes_by_severity_and_queue(labels: list[str], receiver: str) -> None:
    done = amtool(
        "config", "routes", "test", "--config.file", str(SOURCE / "alertmanager.yml"), *labels
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receiver


def test_warnings_are_grouped_and_critical_alerts_page_at_once() -> None:
    route = yaml.safe_load((SOURCE / "alertmanager.yml").read_text())["route"]
    critical = next(r for r in route["routes"] if r["matchers"] == ['severity="critical"'])
    warning = next(r for r in route["routes"] if r["matchers"] == ['severity="warning"'])
    assert critical["group_wait"] == "10s"
    assert warning["group_by"] == ["alertname"]
    assert route["group_interval"] == "10m"  # warnings: at most one message per 10 minutes


def test_compose_renders_the_config_and_points_prometheus_and_grafana_at_it() -> None:
    root = SOURCE.parents[1]
    compose_text = (root / "docker-compose.yml").read_text()
    services = yaml.safe_load(compose_text)["services"]
    render_command = services["alertmanager-config"]["command"]
    assert render_command[:4] == ["python", "-m", "ops.alerting", "render"]
    out = render_command[render_command.index("--out") + 1]
    assert f"--config.file={out}" in services["alertmanager"]["command"]
    assert services["alertmanager"]["depends_on"]["alertmanager-config"] == {
        "condition": "service_completed_successfully"
    }
    # Without a recipient or an SMTP server, compose refuses to start rather than drop alerts.
    assert "${ALERT_EMAIL_TO:?" in compose_text and "${SMTP_HOST:?" in compose_text
    prometheus = yaml.safe_load((root / "ops" / "prometheus" / "prometheus.yml").read_text())
    (target,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target == "alertmanager:9093"
    local = yaml.safe_load((root / "ops" / "prometheus" / "prometheus.local.yml").read_text())
    assert local["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:9093"
    ]
    assert (
        "./ops/grafana/provisioning:/etc/grafana/provisioning:ro" in services["grafana"]["volumes"]
    )
    assert services["grafana"]["environment"]["GF_SMTP_ENABLED"] == "true"
    assert "alertmanager: ops/bin/alertmanager-dev" in (root / "Procfile.dev").read_text()
