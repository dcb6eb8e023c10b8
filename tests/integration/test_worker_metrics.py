"""Worker metrics use canonical queue names, and the delayed gauge returns to zero."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from runtime import records
from tests.support import jobs
from tests.support.polling import wait_for
from tests.support.sockets import listening_on
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def scrape(port: int) -> dict[tuple[str, str], float]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.ConnectError:  # the forked exposition server is still starting (a loaded host)
        return {}
    samples = {}
    for line in text.splitlines():
        match = re.match(r"^(dramatiq_\w+)\{(.*)\} ([0-9.e+-]+)$", line)
        if match:
            samples[(match.group(1), match.group(2))] = float(match.group(3))
    return samples


def test_retried_job_metrics_have_canonical_labels(worker: WorkerProcess, api_client: Any) -> None:
    # Given a job that is retried once through the delay queue
    message = jobs.flaky.send(jobs.Flaky(key=uuid.uuid4().hex[:12], failures=1))
    wait_for(
        lambda: (r := records().get(message.message_id)) and r.state.value == "SUCCESS",
        what="success",
    )
    flaky = 'actor_name="flaky",queue_name="default"'
    # Workers publish their tallies every half second (runtime/middleware/metrics.py).
    samples = wait_for(
        lambda: (
            (s := scrape(worker.metrics_port))
            and s.get(("dramatiq_messages_total", flaky)) == 2
            and s
        ),
        what="metrics",
    )
    # Then no series carries a `.DQ` queue name
    assert not [labels for (_, labels) in samples if ".DQ" in labels]
    assert samples[("dramatiq_message_retries_total", flaky)] == 1
    assert samples[("dramatiq_messages_total", flaky)] == 2
    assert samples[("dramatiq_message_errors_total", flaky)] == 1
    # And the delayed gauge came back to zero instead of drifting per queue label
    delayed = [
        v
        for (name, labels), v in samples.items()
        if name == "dramatiq_delayed_messages_inprogress" and '"flaky"' in labels
    ]
    assert delayed and sum(delayed) == 0
    in_progress = [
        v
        for (name, labels), v in samples.items()
        if name == "dramatiq_messages_inprogress" and '"flaky"' in labels
    ]
    assert in_progress and sum(in_progress) == 0


@pytest.mark.parametrize(("configured", "bound"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_the_metrics_port_binds_loopback_unless_configured(
    worker: WorkerProcess, configured: str | None, bound: str
) -> None:
    # The module's worker runs with the defaults; the other one is told to listen everywhere.
    if configured is None:
        probe = worker
    else:
        probe = WorkerProcess(worker.client, env={"WORKER_METRICS_HOST": configured})
    try:
        wait_for(lambda: listening_on(probe.metrics_port), what="the metrics port")
        assert listening_on(probe.metrics_port) == {bound}
    finally:
        if probe is not worker:
            probe.stop()
