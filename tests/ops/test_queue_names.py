"""Queue names are defined once (runtime.QUEUES): every file that starts or scrapes workers names
exactly those queues, each consumed by one worker process with its own metrics port."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from runtime import QUEUES, REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def _worker_queues(command: list[str]) -> tuple[list[str], str]:
    """The queues and metrics port of an `ops.worker` command line."""
    queues = command[command.index("--queues") + 1 :]
    queues = queues[: next((i for i, a in enumerate(queues) if a.startswith("--")), len(queues))]
    return queues, command[command.index("--metrics-port") + 1]


def _procfile(name: str) -> dict[str, tuple[list[str], str]]:
    workers = {}
    for line in (ROOT / name).read_text().splitlines():
        process, _, command = line.partition(":")
        if "ops.worker" in command:
            words = shlex.split(command.split("&&")[-1])
            workers[process.strip()] = _worker_queues(words)
    return workers


def test_every_queue_has_exactly_one_worker_process_in_each_procfile() -> None:
    for name in ("Procfile", "Procfile.dev"):
        workers = _procfile(name)
        consumed = [queue for queues, _ in workers.values() for queue in queues]
        assert sorted(consumed) == sorted(QUEUES), f"{name} consumes {consumed}, not {QUEUES}"
        ports = [port for _, port in workers.values()]
        assert len(set(ports)) == len(ports), f"{name}: two workers share a metrics port"
    assert _procfile("Procfile") == _procfile("Procfile.dev")


def test_compose_runs_the_same_workers_as_the_procfile() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    workers = {
        name: _worker_queues(service["command"])
        for name, service in services.items()
        if "ops.worker" in service.get("command", [])
    }
    assert workers == _procfile("Procfile")


def test_prometheus_scrapes_every_worker_on_its_port() -> None:
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job["job_name"] == "gaveurs-workers"
        for static in job["static_configs"]
        for target in static["targets"]
    }
    expected = {f"{name}:{port}" for name, (_, port) in _procfile("Procfile").items()}
    assert targets == expected
    local = (ROOT / "ops/prometheus/prometheus.local.yml").read_text()
    for _, port in _procfile("Procfile.dev").values():
        assert re.search(rf"127\.0\.0\.1:{port}\b", local), f"prometheus.local.yml misses {port}"


def test_every_job_runs_on_a_declared_queue() -> None:
    import actors  # noqa: F401  (declares the jobs)

    assert {job.queue for job in REGISTRY.values()} <= set(QUEUES)
