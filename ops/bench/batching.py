"""Batching (issue 21, part 6): what debouncing `refresh_aggregates` saves, in runs and in Redis
commands, beside the same requests sent as plain jobs and as unique jobs (its declaration
before: one queued or running per key).

R requests for the aggregates refresh arrive evenly over S seconds (the seed's "50 times in a
minute", scaled down), sent through `Job.submit` as the API does, while one real worker runs
what they make. Each side counts the runs (distinct task ids) and the Redis commands processed
from the first request until the last run has ended, less the idle worker's own polling
(measured for 2 s right before each round, per second: a debounced round's own commands are
within that noise, so `runs` is its figure to read). The debounce window is the spread plus a
margin, so every request of a round falls in the window the first one opens.

Then E routine e-mails, requested at once, go to a local aiosmtpd server through a real
`notifications` worker: as E `send_email` jobs (one SMTP connection each), and as items of
`send_email_batch` (one run per window, one SMTP session per run). Each side counts the SMTP
sessions (provider calls), the runs and the Redis commands until the last message arrived.

    python -m ops.bench.batching [--requests 50 --spread-s 10 --rounds 3 --emails 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller

from actors.notifications import EMAIL_BATCH_MAX
from ops.bench import report
from ops.bench.env import isolated, worker
from ops.local_redis import free_port

FINAL = {b"SUCCESS", b"FAILURE", b"REVOKED"}


def commands(client: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in client.info("commandstats").values())


def _sender(side: str) -> Callable[[], str]:
    """One request of a side: the task id it was answered with."""
    from actors.maintenance import RefreshAggregates, refresh_aggregates

    payload = RefreshAggregates()
    if side == "debounced":
        return lambda: refresh_aggregates.submit(payload).task_id
    from runtime import DuplicateJob, broker

    def send(**options: Any) -> str:
        message = refresh_aggregates.actor.message_with_options(
            kwargs=payload.model_dump(mode="json"), **options
        )
        try:
            return str(broker().enqueue(message).message_id)
        except DuplicateJob as duplicate:
            return duplicate.existing_task_id

    if side == "unique":
        return lambda: send(unique_key="refresh-False")
    return send


def _ended(client: redis.Redis, task_ids: set[str]) -> bool:
    from runtime import records

    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(records().key(task_id), "state")
    return all(state in FINAL for state in pipe.execute())


def round_of(
    client: redis.Redis, side: str, *, requests: int, spread_s: float, idle_per_s: float
) -> dict[str, float]:
    send = _sender(side)
    interval = spread_s / max(requests - 1, 1)
    before, started = commands(client), time.perf_counter()
    task_ids = set()
    for n in range(requests):
        task_ids.add(send())
        if n < requests - 1:
            time.sleep(interval)
    deadline = time.monotonic() + 300
    while not _ended(client, task_ids):
        assert time.monotonic() < deadline, f"{side}: runs did not end"
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    spent = commands(client) - before - idle_per_s * elapsed
    return {"runs": len(task_ids), "redis_commands": round(spent), "seconds": round(elapsed, 2)}


def _idle_rate(client: redis.Redis, seconds: float = 2.0) -> float:
    before = commands(client)
    time.sleep(seconds)
    return (commands(client) - before) / seconds


class Sessions:
    """aiosmtpd handler: the SMTP session of each message received (aiosmtpd makes one session
    object per connection; holding them keeps their ids distinct)."""

    def __init__(self) -> None:
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.peers.append(session)
        return "250 OK"


def emails_round(
    client: redis.Redis, smtp: Sessions, side: str, *, emails: int, idle_per_s: float
) -> dict[str, float]:
    from actors.notifications import SendEmail, send_email, send_email_batch

    tag = f"{side}-{time.monotonic_ns()}"
    items = [
        SendEmail(
            to_email=f"{tag}.{n}@example.org", subject="Lot", body_html="<p>x</p>", key=f"{tag}-{n}"
        )
        for n in range(emails)
    ]
    received = len(smtp.peers)
    before, started = commands(client), time.perf_counter()
    submit = send_email_batch.add if side == "batched" else send_email.submit
    task_ids = {submit(item).task_id for item in items}
    deadline = time.monotonic() + 300
    while len(smtp.peers) - received < emails or not _ended(client, task_ids):
        assert time.monotonic() < deadline, f"{side}: e-mails did not all arrive"
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    spent = commands(client) - before - idle_per_s * elapsed
    return {
        "runs": len(task_ids),
        "smtp_sessions": len({id(session) for session in smtp.peers[received:]}),
        "redis_commands": round(spent),
        "seconds": round(elapsed, 2),
    }


def _medians(found: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    return {
        side: {
            **{
                f"{figure}_median": round(statistics.median(r[figure] for r in rounds), 1)
                for figure in rounds[0]
            },
            "rounds": rounds,
        }
        for side, rounds in found.items()
    }


def run(*, requests: int, spread_s: float, rounds: int, emails: int) -> dict[str, Any]:
    window_ms = int(spread_s * 1000 * 1.2) + 200
    smtp = Sessions()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    server, _ = isolated(
        AGGREGATES_DEBOUNCE_MS=str(window_ms),
        NOTIFY_BACKEND="live",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(controller.port),
        SMTP_SECURITY="none",
        EMAIL_RATE_PER_SECOND="100000",
        EMAIL_BATCH_WINDOW_MS="500",
    )
    try:
        client = server.client
        before = report.load()
        log_dir = Path(tempfile.mkdtemp(prefix="gaveurs-bench-batching-"))
        sides = ("plain", "unique", "debounced")
        found: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        mail: dict[str, list[dict[str, float]]] = {"one_job_each": [], "batched": []}
        with worker(
            client, module="actors", queue=["default", "notifications"], threads=4, log_dir=log_dir
        ):
            idle_rates = []
            for _ in range(rounds):
                for side in sides:
                    idle_rates.append(_idle_rate(client))
                    found[side].append(
                        round_of(
                            client,
                            side,
                            requests=requests,
                            spread_s=spread_s,
                            idle_per_s=idle_rates[-1],
                        )
                    )
                for side in mail:
                    idle_rates.append(_idle_rate(client))
                    mail[side].append(
                        emails_round(client, smtp, side, emails=emails, idle_per_s=idle_rates[-1])
                    )
            idle = statistics.median(idle_rates)
        email_figures = _medians(mail)
        one_each, batched = email_figures["one_job_each"], email_figures["batched"]

        def median(side: str, figure: str) -> float:
            return round(statistics.median(r[figure] for r in found[side]), 1)

        summary = _medians(found)
        plain_commands = median("plain", "redis_commands")
        saved = 1 - median("debounced", "redis_commands") / plain_commands
        return {
            "benchmark": "batching",
            "requests": requests,
            "spread_s": spread_s,
            "debounce_window_ms": window_ms,
            "rounds": rounds,
            "idle_worker_commands_per_s": round(idle, 1),
            "refresh_aggregates": summary,
            "redis_commands_saved_vs_plain": round(saved, 3),
            "runs_saved_vs_plain": median("plain", "runs") - median("debounced", "runs"),
            "emails": emails,
            "email_batch_window_ms": 500,
            "notifications": email_figures,
            "smtp_sessions_saved": one_each["smtp_sessions_median"]
            - batched["smtp_sessions_median"],
            "redis_commands_per_email": {
                side: round(figures["redis_commands_median"] / emails, 1)
                for side, figures in email_figures.items()
            },
            "targets": {
                # The seed's case: every request of the window is covered by one run.
                "debounced_runs_per_window": report.target(median("debounced", "runs"), at_most=1),
                "debounced_redis_commands_vs_plain": report.target(
                    round(1 - saved, 3), at_most=0.5
                ),
                # E-mails requested at once: one SMTP session per EMAIL_BATCH_MAX of them.
                "batched_smtp_sessions": report.target(
                    batched["smtp_sessions_median"], at_most=-(-emails // EMAIL_BATCH_MAX)
                ),
            },
            "load": {"before": before, "after": report.load()},
        }
    finally:
        server.stop()
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--spread-s", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--emails", type=int, default=200)
    args = parser.parse_args()
    figures = run(
        requests=args.requests, spread_s=args.spread_s, rounds=args.rounds, emails=args.emails
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
