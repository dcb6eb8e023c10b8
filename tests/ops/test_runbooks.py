"""Every alert (Prometheus rules and Grafana alert rules) links to a runbook section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
GRAFANA_RULES = ROOT / "ops" / "grafana" / "provisioning" / "alerting" / "rules.yml"


def _anchor(heading: str) -> str:
    # GitHub's rule: lower case, punctuation dropped, spaces to hyphens.
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def _anchors() -> set[str]:
    return {_anchor(m) for m in re.findall(r"^#+ (.+)$", RUNBOOKS.read_text(), re.MULTILINE)}


def _prometheus_alerts() -> dict[str, dict[str, str]]:
    groups = yaml.safe_load((ROOT / "ops" / "prometheus" / "rules.yml").read_text())["groups"]
    return {r["alert"]: r["annotations"] for g in groups for r in g["rules"]}


def _grafana_alerts() -> dict[str, dict[str, str]]:
    groups = yaml.safe_load(GRAFANA_RULES.read_text())["groups"]
    return {r["title"]: r["annotations"] for g in groups for r in g["rules"]}


def test_every_alert_has_a_runbook_url_whose_anchor_exists() -> None:
    anchors = _anchors()
    alerts = {**_prometheus_alerts(), **{f"grafana:{k}": v for k, v in _grafana_alerts().items()}}
    assert len(alerts) > 10
    for alert, notes in alerts.items():
        url = notes.get("runbook_url", "")
        path, _, anchor = url.partition("#")
        assert path == "docs/runbooks.md", (alert, url)
        assert anchor in anchors, f"{alert}: no section #{anchor} in docs/runbooks.md"


def test_every_runbook_says_what_it_means_how_to_confirm_and_what_to_do() -> None:
    sections = re.split(r"^## ", RUNBOOKS.read_text(), flags=re.MULTILINE)[1:]
    by_title = {s.splitlines()[0].strip(): s for s in sections}
    for alert in _prometheus_alerts():
        text = by_title[alert]
        for part in ("**Means**", "**Confirm**", "**Do**"):
            assert part in text, (alert, part)
