"""ML jobs end to end: the API enqueues, real workers on ml_heavy (1 thread) and ml_light (2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.local_redis import RedisServer
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ml_workers(
    redis_server: RedisServer, demo_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    """The two ML workers as the Procfile runs them: ml_heavy with ONE thread, ml_light with two."""
    env = {"MODEL_DIR": str(tmp_path_factory.mktemp("models")), "WORKER_CPU_PIN": "off"}
    logs = tmp_path_factory.mktemp("ml-logs")
    heavy, light = (
        WorkerProcess(
            redis_server.client,
            module="actors",
            queues=(queue,),
            threads=threads,
            env=env,
            log_path=Path(logs) / f"{queue}.log",
        )
        for queue, threads in (("ml_heavy", 1), ("ml_light", 2))
    )
    yield heavy, light
    heavy.stop()
    light.stop()


def status(api_client: Any, task_id: str) -> dict[str, Any]:
    response = api_client.get(f"/api/tasks/status/{task_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def follow(api_client: Any, task_id: str, *, timeout: float) -> tuple[list[int], dict[str, Any]]:
    """Poll until the job ends; the progress values seen while it was STARTED, and its record."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = status(api_client, task_id)
        if body["status"] == "STARTED":
            seen.append(body["progress"])
        if body["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
            return seen, body
        time.sleep(0.05)
    raise AssertionError(f"{task_id} still {body['status']} after {timeout} s")


def test_symbolic_regression_reports_progress_then_the_formula(
    ml_workers: tuple[WorkerProcess, WorkerProcess], api_client: Any, auth: dict[str, str]
) -> None:
    # Enough generations that the run spans several polls of its progress.
    response = api_client.post(
        "/api/tasks/ml/pysr/train", params={"generations": 300}, headers=auth
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]

    seen, done = follow(api_client, task_id, timeout=120)

    assert done["status"] == "SUCCESS", done.get("error")
    assert done["queue"] == "ml_heavy"
    distinct = sorted(set(seen))
    assert len(distinct) >= 3 and seen == sorted(seen), seen
    result = done["result"]
    assert result["r2_score"] >= 0.95 and result["formula"]
    assert result["engine"] == "operon"
    assert set(result["variables"]) <= {
        "dose_totale_kg",
        "poids_initial_kg",
        "temperature_moyenne_c",
    }
    latest = api_client.get("/api/models/symbolic_itm/latest", headers=auth)
    assert latest.status_code == 200, latest.text
    assert latest.json()["metrics"]["r2_score"] == pytest.approx(result["r2_score"], abs=1e-4)


def test_unknown_site_is_refused_before_queueing(api_client: Any, auth: dict[str, str]) -> None:
    response = api_client.post(
        "/api/tasks/ml/prophet/train",
        params={"site_code": "NOPE", "horizon_days": 30},
        headers=auth,
    )
    assert response.status_code == 404
    assert "NOPE" in response.text


def follow_workflow(api_client: Any, status_url: str, *, timeout: float) -> dict[str, Any]:
    """Poll a workflow until it ends (its summary step ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api_client.get(status_url).json()
        if body["state"] in ("SUCCESS", "FAILURE", "REVOKED") and body["finished"] == body["total"]:
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(f"{status_url} still {body['state']} after {timeout} s")


def test_retrain_all_is_a_workflow_whose_summary_ends_after_every_child(
    ml_workers: tuple[WorkerProcess, WorkerProcess], api_client: Any, auth: dict[str, str]
) -> None:
    response = api_client.post("/api/tasks/ml/retrain-all", headers=auth)
    assert response.status_code == 202, response.text
    # The job only starts the workflow: it ends at once, holding no thread for the children
    _, started = follow(api_client, response.json()["task_id"], timeout=60)
    assert started["status"] == "SUCCESS", started.get("error")

    done = follow_workflow(api_client, started["result"]["status_url"], timeout=150)

    assert done["state"] == "SUCCESS", [(s["name"], s["state"], s["error"]) for s in done["steps"]]
    steps = {step["name"]: step for step in done["steps"]}
    assert {name.split(":")[0] for name in steps} >= {
        "train_pysr",
        "cluster_gaveurs",
        "detect_anomalies",
        "optimize_abattage_planning",
        "train_prophet",
        "summary",
    }
    # The summary ran after every child, and saw each child's SUCCESS
    summary = status(api_client, steps["summary"]["task_id"])
    children = summary["result"]["children"]
    assert set(children) == set(steps) - {"summary"}
    for name, child in children.items():
        record = status(api_client, child["task_id"])
        assert record["status"] == child["state"] == "SUCCESS", (name, record)
        assert record["completed_at"] <= summary["started_at"]


def test_retrain_all_fails_naming_the_child_that_failed(
    ml_workers: tuple[WorkerProcess, WorkerProcess],
    api_client: Any,
    auth: dict[str, str],
    demo_database: str,
) -> None:
    from sqlalchemy import delete

    from domain.models import Site
    from domain.platform import db

    # Given a new site without any slaughter history: its forecast can only fail (no retry)
    engine = db.make_engine(demo_database)
    factory = db.session_factory(engine)
    with factory() as session, session.begin():
        session.add(
            Site(
                code="ZZ",
                name="Empty site",
                region="Test",
                manager_name="Nobody",
                manager_email="nobody@example.org",
                manager_phone="+33000000000",
            )
        )
    try:
        response = api_client.post("/api/tasks/ml/retrain-all", headers=auth)
        assert response.status_code == 202, response.text
        _, started = follow(api_client, response.json()["task_id"], timeout=60)
        workflow = follow_workflow(api_client, started["result"]["status_url"], timeout=150)
        summary = next(s for s in workflow["steps"] if s["name"] == "summary")
        done = status(api_client, summary["task_id"])
    finally:
        with factory() as session, session.begin():
            session.execute(delete(Site).where(Site.code == "ZZ"))
        engine.dispose()

    # Then the workflow ends FAILURE, its summary naming the failed forecast
    assert workflow["state"] == "FAILURE"
    assert done["status"] == "FAILURE"
    assert "ChildFailed" in done["error"] and "train_prophet" in done["error"]
    assert done["attempts"] == 1
