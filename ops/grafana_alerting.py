"""Grafana unified-alerting provisioning, built with Grafana's own typed models
(grafana-foundation-sdk) and written as the files Grafana provisions from
ops/grafana/provisioning/alerting/: the queue rules (depth, age, dead letters, no consumer), one
contact point (e-mail) and the notification policy.

The rules are derived from ops/prometheus/rules.yml (same expression, threshold, `for:`, labels
and runbook), so operators who alert from Grafana get the same alerts; `tests/ops/
test_grafana_alerting.py` fails when the files and this module disagree.

    python -m ops.grafana_alerting          # rewrite the provisioning files
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import alerting, expr, prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as models

OPS = Path(__file__).resolve().parent
OUT = OPS / "grafana" / "provisioning" / "alerting"
PROMETHEUS_RULES = OPS / "prometheus" / "rules.yml"
DATASOURCE_UID = "prometheus"  # ops/grafana/provisioning/datasources/prometheus.yml
FOLDER = "Gaveurs Tasks"
GROUP = "gaveurs-queues"
CONTACT_POINT = "gaveurs-oncall"
#: The Prometheus queue alerts Grafana mirrors: `<metric expression> > <threshold>`.
MIRRORED = ("GaveursBacklogTooDeep", "GaveursBacklogTooOld", "GaveursDeadLettersGrowing")
COMPARISON = re.compile(r"^(?P<query>.+?)\s*>\s*(?P<threshold>[0-9.]+)$", re.DOTALL)


def _prometheus_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(PROMETHEUS_RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _annotations(prometheus_annotations: dict[str, str]) -> dict[str, str]:
    # Grafana templates read a query's value as $values.A.Value, not Prometheus's $value.
    return {
        key: value.replace("$value", "$values.A.Value")
        for key, value in prometheus_annotations.items()
        if key != "dashboard"
    }


def _rule(name: str, source: dict[str, Any]) -> alerting.Rule:
    match = COMPARISON.match(source["expr"].strip())
    if not match:
        raise ValueError(f"{name}: expected `<query> > <number>`, got {source['expr']!r}")
    query = prometheus.Dataquery().expr(match["query"]).instant().ref_id("A")
    threshold = (
        expr.TypeThreshold()
        .ref_id("C")
        .expression("A")
        .conditions(
            [
                expr.ExprTypeThresholdConditions().evaluator(
                    expr.ExprTypeThresholdConditionsEvaluator()
                    .type("gt")
                    .params([float(match["threshold"])])
                )
            ]
        )
    )
    return (
        alerting.Rule(name)
        .uid(re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()[:40])
        .condition("C")
        .queries(
            [
                alerting.Query("A")
                .datasource_uid(DATASOURCE_UID)
                .relative_time_range(models.RelativeTimeRange(from_val=600, to=0))
                .model(query),
                alerting.Query("C").datasource_uid("__expr__").model(threshold),
            ]
        )
        .for_val(source.get("for", "0s"))
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels(dict(source["labels"]))
        .annotations(_annotations(source["annotations"]))
    )


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def rules() -> list[models.Rule]:
    source = _prometheus_rules()
    return [_rule(name, source[name]).build() for name in MIRRORED]


def contact_points() -> list[models.ContactPoint]:
    # $ALERT_EMAIL_TO is expanded by Grafana's provisioning from its environment
    # (docker-compose.yml refuses to start without it, and sets Grafana's SMTP from SMTP_*). The
    # webhook stays with Alertmanager: Grafana refuses a webhook without URL at start-up.
    return [
        alerting.ContactPoint()
        .name(CONTACT_POINT)
        .uid("gaveurs-oncall-email")
        .type("email")
        .settings({"addresses": "$ALERT_EMAIL_TO", "singleEmail": True})
        .disable_resolve_message(False)
        .build(),
    ]


def _matcher(name: str, value: str) -> models.Matcher:
    return alerting.Matcher().name(name).type(models.MatchType.EQUAL).value(value).build()


def policy() -> models.NotificationPolicy:
    """The same timing as ops/alertmanager/alertmanager.yml: critical at once, warnings grouped."""
    critical = (
        alerting.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .object_matchers([_matcher("severity", "critical")])
        .group_wait("10s")
        .group_interval("1m")
        .repeat_interval("1h")
    )
    warning = (
        alerting.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .object_matchers([_matcher("severity", "warning")])
        .group_by(["grafana_folder", "alertname"])
    )
    return (
        alerting.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .group_by(["grafana_folder", "alertname", "queue"])
        .group_wait("1m")
        .group_interval("10m")
        .repeat_interval("4h")
        .routes([critical, warning])
        .build()
    )


def _file_rule(rule: models.Rule) -> dict[str, Any]:
    # The file format nests rules in their group: folder, group and org live there.
    data: dict[str, Any] = _plain(rule)
    for group_key in ("folderUID", "ruleGroup", "orgID"):
        data.pop(group_key, None)
    return data


def _file_policy(node: dict[str, Any]) -> dict[str, Any]:
    # Files write object matchers as [name, operator, value] triples.
    if "object_matchers" in node:
        node["object_matchers"] = [
            [m["Name"], m["Type"], m["Value"]] for m in node["object_matchers"]
        ]
    for route in node.get("routes", []):
        _file_policy(route)
    return node


def files() -> dict[str, dict[str, Any]]:
    """Provisioning file name -> content."""
    points = [_plain(point) for point in contact_points()]
    return {
        "rules.yml": {
            "apiVersion": 1,
            "groups": [
                {
                    "orgId": 1,
                    "name": GROUP,
                    "folder": FOLDER,
                    "interval": "1m",
                    "rules": [_file_rule(rule) for rule in rules()],
                }
            ],
        },
        "contact-points.yml": {
            "apiVersion": 1,
            "contactPoints": [
                {
                    "orgId": 1,
                    "name": CONTACT_POINT,
                    "receivers": [{k: v for k, v in p.items() if k != "name"} for p in points],
                }
            ],
        },
        "policies.yml": {
            "apiVersion": 1,
            "policies": [{"orgId": 1, **_file_policy(_plain(policy()))}],
        },
    }


HEADER = (
    "# Generated by `python -m ops.grafana_alerting` from ops/prometheus/rules.yml; do not edit.\n"
)


def render(name: str, content: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(content, sort_keys=False, width=100)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content in files().items():
        (OUT / name).write_text(render(name, content))
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
