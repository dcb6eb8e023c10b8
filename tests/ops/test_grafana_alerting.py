"""Grafana alerting provisioning: generated from Grafana's typed models, read back by them without
loss, equivalent to the Prometheus queue rules. (That every metric its queries name is exported
is checked with the dashboards' live scrapes in test_grafana.py.)"""

from __future__ import annotations

import json
import typing
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as models

from ops.grafana_alerting import MIRRORED, OUT, _prometheus_rules, files, render


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def _on_disk(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((OUT / name).read_text())
    return data


def test_the_files_are_what_the_typed_models_build() -> None:
    for name, content in files().items():
        assert (OUT / name).read_text() == render(name, content), (
            f"{name} is stale: run `python -m ops.grafana_alerting`"
        )


def test_rules_read_back_by_grafanas_model_without_loss() -> None:
    (group,) = _on_disk("rules.yml")["groups"]
    assert group["folder"] and group["interval"] == "1m"
    states = typing.get_type_hints(models.Rule.__init__)
    for rule in group["rules"]:
        parsed = models.Rule.from_json(rule)
        again = _plain(parsed)
        for group_key in ("folderUID", "ruleGroup", "orgID"):
            again.pop(group_key)
        # A key the model does not know (a typo, a field of another version) would be dropped.
        assert again == rule
        assert rule["noDataState"] in typing.get_args(typing.get_args(states["no_data_state"])[0])
        assert rule["execErrState"] in typing.get_args(typing.get_args(states["exec_err_state"])[0])
        assert rule["condition"] in {query["refId"] for query in rule["data"]}
        assert {q["datasourceUid"] for q in rule["data"]} == {"prometheus", "__expr__"}


def test_contact_point_and_policy_read_back_without_loss() -> None:
    (point,) = _on_disk("contact-points.yml")["contactPoints"]
    kinds = typing.get_args(typing.get_args(typing.get_type_hints(models.ContactPoint.__init__)
                                            ["type_val"])[0])  # fmt: skip
    for receiver in point["receivers"]:
        full = {**receiver, "name": point["name"]}
        assert _plain(models.ContactPoint.from_json(full)) == full
        assert receiver["type"] in kinds
    assert [r["type"] for r in point["receivers"]] == ["email"]
    assert point["receivers"][0]["settings"]["addresses"] == "$ALERT_EMAIL_TO"
    (policy,) = _on_disk("policies.yml")["policies"]
    policy = {k: v for k, v in policy.items() if k != "orgId"}

    def as_model(node: dict[str, Any]) -> dict[str, Any]:
        node = dict(node)
        if "object_matchers" in node:
            node["object_matchers"] = [
                {"Name": n, "Type": t, "Value": v} for n, t, v in node["object_matchers"]
            ]
        node["routes"] = [as_model(r) for r in node.get("routes", [])] or None
        return {k: v for k, v in node.items() if v is not None}

    model = as_model(policy)
    assert _plain(models.NotificationPolicy.from_json(model)) == model
    # Every route sends to a contact point that exists.
    receivers = {policy["receiver"], *(r["receiver"] for r in policy["routes"])}
    assert receivers == {point["name"]}


def test_grafana_rules_mirror_the_prometheus_queue_rules() -> None:
    prometheus = _prometheus_rules()
    (group,) = _on_disk("rules.yml")["groups"]
    assert [rule["title"] for rule in group["rules"]] == list(MIRRORED)
    for rule in group["rules"]:
        source = prometheus[rule["title"]]
        query = next(q["model"] for q in rule["data"] if q["refId"] == "A")
        threshold = next(q["model"] for q in rule["data"] if q["refId"] == "C")
        (condition,) = threshold["conditions"]
        assert condition["evaluator"]["type"] == "gt"
        (limit,) = condition["evaluator"]["params"]
        assert f"{query['expr']} > {limit:g}" == source["expr"].strip()
        assert rule["for"] == source["for"]
        assert rule["labels"] == source["labels"]
        assert rule["annotations"]["runbook_url"] == source["annotations"]["runbook_url"]
