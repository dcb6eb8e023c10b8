"""Procfile and docker-compose.yml: every process is there, and what they run exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _procfile(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def _module_exists(command: list[str]) -> bool:
    if command[:2] in (["python", "-m"], [".venv/bin/python", "-m"]):
        module = command[2].replace(".", "/")
        return (ROOT / f"{module}.py").exists() or (ROOT / module / "__main__.py").exists()
    if command[0] in ("uvicorn", ".venv/bin/uvicorn"):
        module = command[1].split(":")[0].replace(".", "/")
        return (ROOT / f"{module}.py").exists()
    if command[0] == "gaveurs":
        return (ROOT / "ops" / "cli.py").exists()
    return (ROOT / command[0]).exists()


def test_procfile_has_every_process_and_their_commands_exist() -> None:
    procfile = _procfile("Procfile")
    assert {"web", "release", "clock", "metrics"} <= set(procfile)
    workers = {name for name in procfile if name.startswith("worker_")}
    expected = ("ml_heavy", "ml_light", "exports", "notifications", "urgent", "default")
    assert workers == {f"worker_{q}" for q in expected}
    ports = [re.search(r"--metrics-port (\d+)", procfile[w]) for w in sorted(workers)]
    assert len({m.group(1) for m in ports if m}) == len(workers)  # one metrics port each
    for command in procfile.values():
        assert _module_exists(shlex.split(command)), command


def test_compose_runs_the_procfile_processes_with_persistence_and_monitoring() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    procfile = _procfile("Procfile")
    assert set(procfile) <= set(services)
    for name in procfile:
        command = services[name]["command"]
        assert _module_exists(command), (name, command)
        if name.startswith("worker_"):
            assert " ".join(command) == procfile[name], name
    assert "--appendonly" in services["redis"]["command"]  # Redis persistence
    assert services["clock"]["deploy"]["replicas"] >= 2  # exactly-once ticks make it safe
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (service, source)
    assert (ROOT / "Dockerfile").exists()
    scraped = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target.split(":")[0]
        for job in scraped["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {"web", "metrics"} | {n for n in procfile if n.startswith("worker_")}


def test_env_example_documents_every_setting() -> None:
    from domain.platform.settings import Settings

    documented = {
        line.split("=", 1)[0].strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    missing = sorted(
        name.upper() for name in Settings.model_fields if name.upper() not in documented
    )
    assert not missing, f".env.example lacks {missing}"
