"""The alerting chain as real processes: the exporter, Prometheus evaluating our rules,
Alertmanager with our routing, an aiosmtpd server and a webhook receiver.

Only the waiting times are shortened (scrape and evaluation every second, each rule's `for:` and
Alertmanager's group waits); the expressions, thresholds, labels, routes, inhibitions, receivers
and templates are the shipped ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from domain.platform.settings import Settings
from ops.alerting import render
from ops.local_redis import free_port
from tests.support.notify import SmtpServer
from tests.support.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_BASE = "https://git.coop.example/gaveurs/blob/main/"
FOR = "2s"


class WebhookReceiver:
    """Collects the JSON bodies Alertmanager posts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.bodies.append(body)
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, alertname: str, status: str, *, queue: str) -> list[dict[str, Any]]:
        with self.lock:
            bodies = list(self.bodies)
        return [
            alert
            for body in bodies
            for alert in body["alerts"]
            if alert["labels"]["alertname"] == alertname
            and alert["status"] == status
            and alert["labels"].get("queue") == queue
        ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _process(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        time.sleep(0.1)
        return False


def start_prometheus(tmp: Path, config: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
    """A real Prometheus on a free port with `config` (rule files relative to `tmp`), ready."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus missing: `make test` installs it (apt package prometheus)"
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = _process(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prometheus'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(f"{url}/-/ready"), timeout=30, what="Prometheus")
    return process, url


def _quick_rules(path: Path) -> None:
    rules = yaml.safe_load((ROOT / "ops" / "prometheus" / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = FOR
    path.write_text(yaml.safe_dump(rules, sort_keys=False))


def _quick_routes(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    routes = [config["route"], *config["route"]["routes"]]
    for route in routes:
        if "group_wait" in route:
            # Critical routes keep a wait twice the warnings', as in production, so an
            # inhibiting alert of the same evaluation can arrive first.
            route["group_wait"] = "2s" if route is not config["route"] else "1s"
        route["group_interval"] = "1s"
    path.write_text(yaml.safe_dump(config, sort_keys=False))


class AlertingStack:
    """Exporter -> Prometheus -> Alertmanager -> SMTP + webhook, on free ports."""

    def __init__(self, tmp: Path, *, worker_ports: list[int]) -> None:
        self.tmp = tmp
        self.smtp = SmtpServer()
        self.webhook = WebhookReceiver()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.exporter_port = free_port()
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "ops.exporter"],
                cwd=ROOT,
                env={**os.environ, "EXPORTER_PORT": str(self.exporter_port)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self.alertmanager_url = self._start_alertmanager()
        self.prometheus_url = self._start_prometheus(worker_ports)

    def _start_alertmanager(self) -> str:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary, "Alertmanager missing: `make test` installs prometheus-alertmanager"
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=self.smtp.port,
            smtp_security="none",
            alert_email_to="oncall@coop.example",
            alert_webhook_url=self.webhook.url,
            alert_runbook_base_url=RUNBOOK_BASE,
        )
        config = render(settings, out=self.tmp / "alertmanager" / "alertmanager.yml")
        _quick_routes(config)
        port = free_port()
        self.processes.append(
            _process(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={self.tmp / 'alertmanager' / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                self.tmp / "alertmanager.log",
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(f"{url}/-/ready"), timeout=30, what="Alertmanager")
        return url

    def _start_prometheus(self, worker_ports: list[int]) -> str:
        _quick_rules(self.tmp / "rules.yml")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [self.alertmanager_url.split("//")[1]]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "gaveurs-metrics",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.exporter_port}"]}],
                },
                {
                    "job_name": "gaveurs-workers",
                    "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in worker_ports]}],
                },
            ],
        }
        process, url = start_prometheus(self.tmp, config)
        self.processes.append(process)
        return url

    def query(self, promql: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.prometheus_url}/api/v1/query?{query}") as response:
            result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
        return result

    def alertmanager_alerts(self, alertname: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
        with urllib.request.urlopen(f"{self.alertmanager_url}/api/v2/alerts?{query}") as response:
            alerts: list[dict[str, Any]] = json.loads(response.read())
        return alerts

    def mails(self, alertname: str, status: str, *, queue: str) -> list[str]:
        """Subjects and plain-text bodies of the e-mails about `alertname` on `queue` in
        `status` (firing/resolved)."""
        found = []
        for message in self.smtp.messages:
            subject = message["Subject"]
            if subject.startswith(f"[{status.upper()}") and f"{alertname} on {queue} " in subject:
                body = message.get_body(preferencelist=("plain",))
                assert body is not None
                found.append(f"{message['Subject']}\n{body.get_content()}")  # type: ignore[attr-defined]
        return found

    def notified(
        self, alertname: str, status: str, *, queue: str, timeout: float = 90
    ) -> tuple[str, dict[str, Any]]:
        """Wait for the e-mail and the webhook call about `alertname` on `queue` in `status`."""
        what = f"the {status} notice of {alertname} on {queue}"
        mail = wait_for(
            lambda: self.mails(alertname, status, queue=queue), timeout=timeout, what=what
        )[0]
        hooked = wait_for(
            lambda: self.webhook.alerts(alertname, status, queue=queue), timeout=10, what=what
        )[0]
        return mail, hooked

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.smtp.stop()
        self.webhook.stop()
