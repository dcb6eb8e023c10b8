"""The alerts Prometheus has firing, for the console's overview: read from its HTTP API
(`GET /api/v1/alerts`) at each poll, with a short timeout, so a slow or absent Prometheus
says so on the page instead of holding it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

#: The overview polls every 3 s: an answer later than this is reported as unreachable.
TIMEOUT_S = 1.5


@dataclass(frozen=True)
class Alerts:
    """`status`: "off" (PROMETHEUS_URL unset), "unreachable" (`detail` says why), or "ok"."""

    status: Literal["off", "unreachable", "ok"]
    firing: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0
    detail: str = ""
    url: str = ""


def _alert(raw: dict[str, Any]) -> dict[str, Any]:
    labels = raw.get("labels") or {}
    annotations = raw.get("annotations") or {}
    return {
        "name": labels.get("alertname", "?"),
        "severity": labels.get("severity", ""),
        "queue": labels.get("queue", ""),
        "summary": annotations.get("summary") or annotations.get("description", ""),
        "since": raw.get("activeAt", ""),
    }


def prometheus_alerts(url: str, *, timeout_s: float = TIMEOUT_S) -> Alerts:
    if not url:
        return Alerts("off")
    base = url.rstrip("/")
    try:
        answer = httpx.get(f"{base}/api/v1/alerts", timeout=timeout_s)
        answer.raise_for_status()
        alerts = answer.json()["data"]["alerts"]
    except httpx.HTTPError as error:
        return Alerts("unreachable", detail=f"{type(error).__name__}: {error}", url=base)
    except (ValueError, KeyError, TypeError):
        return Alerts("unreachable", detail="its answer is not Prometheus' alerts API", url=base)
    firing = [_alert(a) for a in alerts if a.get("state") == "firing"]
    firing.sort(key=lambda a: (a["severity"] != "critical", a["name"], a["queue"]))
    pending = sum(1 for a in alerts if a.get("state") == "pending")
    return Alerts("ok", firing=firing, pending=pending, url=base)
