"""What the clocks keep in Redis: per-entry last run, heartbeats, skip counts.

Read by `GET /api/schedules`, `gaveurs schedules` and the metrics exporter; written by the
clock (`scheduler/clock.py`) and by the worker middleware that skips late runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from runtime import SCHEDULER_PREFIX, SKIPS_KEY, entry_key, mark_skipped

PREFIX = SCHEDULER_PREFIX
HEARTBEAT_KEY = PREFIX + "heartbeat"
#: Each clock's wall clock minus Redis's, in ms, for the clock-skew alert.
OFFSETS_KEY = PREFIX + "clock_offsets"
HISTORY_KEY = PREFIX + "history"
HISTORY_LENGTH = 1000
#: Clocks beat at least this often; one silent for three periods is gone.
BEAT_PERIOD_S = 15.0
ALIVE_WINDOW_S = 3 * BEAT_PERIOD_S
#: Heartbeats of clocks gone for longer than this are deleted.
FORGET_AFTER_S = 86_400.0


@dataclass(frozen=True)
class LastRun:
    tick_ms: int
    task_id: str | None
    kind: str
    fired_at_ms: int | None
    missed: int
    scheduler: str | None
    outcome: str | None

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> LastRun | None:
        if b"last_tick_ms" not in raw:
            return None
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            tick_ms=int(text["last_tick_ms"]),
            task_id=text.get("task_id") or None,
            kind=text.get("kind", "on_time"),
            fired_at_ms=int(text["fired_at_ms"]) if text.get("fired_at_ms") else None,
            missed=int(text.get("missed", "0")),
            scheduler=text.get("scheduler") or None,
            outcome=text.get("outcome") or None,
        )


class ScheduleState:
    """Reads and writes the clocks' shared state; one instance per Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._claim = client.register_script(
            (Path(__file__).parent / "lua" / "claim.lua").read_text()
        )

    def last_runs(self, names: list[str]) -> dict[str, LastRun | None]:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(entry_key(name))
        return {
            name: LastRun.from_hash(raw) for name, raw in zip(names, pipe.execute(), strict=True)
        }

    def initialise(self, name: str, tick_ms: int) -> None:
        """First sight of an entry: nothing before `tick_ms` counts as missed."""
        self.client.hsetnx(entry_key(name), "last_tick_ms", tick_ms)

    def claim(self, name: str, tick_ms: int, **fields: Any) -> bool:
        argv: list[Any] = [tick_ms]
        for field, value in fields.items():
            argv.extend((field, "" if value is None else value))
        return bool(self._claim(keys=[entry_key(name)], args=argv))

    def restore(self, name: str, previous: LastRun | None) -> None:
        """Undo a claim whose message could not be sent, so the next pass tries again."""
        key = entry_key(name)
        pipe = self.client.pipeline(transaction=True)
        if previous is None:
            pipe.delete(key)
        else:
            pipe.hset(
                key,
                mapping={
                    "last_tick_ms": previous.tick_ms,
                    "task_id": previous.task_id or "",
                    "kind": previous.kind,
                    "fired_at_ms": previous.fired_at_ms or "",
                    "missed": previous.missed,
                    "scheduler": previous.scheduler or "",
                },
            )
        pipe.execute()

    def mark_skipped(self, name: str, reason: str) -> int:
        """A late run was dropped: count it (metric) and say so in the entry's last run."""
        return mark_skipped(self.client, name, reason)

    def record(self, run: dict[str, Any]) -> None:
        """Append a sent run to the recent history (newest first, bounded)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(HISTORY_KEY, json.dumps(run))
        pipe.ltrim(HISTORY_KEY, 0, HISTORY_LENGTH - 1)
        pipe.execute()

    def history(self, limit: int = HISTORY_LENGTH) -> list[dict[str, Any]]:
        return [json.loads(row) for row in self.client.lrange(HISTORY_KEY, 0, limit - 1)]

    def skips(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(SKIPS_KEY).items()}

    def beat(self, scheduler_id: str, now_s: float | None = None) -> None:
        now_s = time.time() if now_s is None else now_s
        beats = self.heartbeats()
        stale = [sid for sid, at in beats.items() if now_s - at > FORGET_AFTER_S]
        seconds, micros = self.client.time()
        offset_ms = int((time.time() - seconds - micros / 1_000_000) * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(HEARTBEAT_KEY, scheduler_id, f"{now_s:.3f}")
        pipe.hset(OFFSETS_KEY, scheduler_id, offset_ms)
        if stale:
            pipe.hdel(HEARTBEAT_KEY, *stale)
            pipe.hdel(OFFSETS_KEY, *stale)
        pipe.execute()

    def leave(self, scheduler_id: str) -> None:
        self.client.hdel(HEARTBEAT_KEY, scheduler_id)
        self.client.hdel(OFFSETS_KEY, scheduler_id)

    def clock_offsets(self) -> dict[str, int]:
        """Wall clock minus Redis clock (ms) of each clock that beat recently."""
        return {k.decode(): int(v) for k, v in self.client.hgetall(OFFSETS_KEY).items()}

    def heartbeats(self) -> dict[str, float]:
        return {k.decode(): float(v) for k, v in self.client.hgetall(HEARTBEAT_KEY).items()}

    def alive(self, now_s: float | None = None) -> dict[str, float]:
        """Clocks that beat within the alive window, with the age of their last beat (s)."""
        now_s = time.time() if now_s is None else now_s
        return {
            sid: now_s - at for sid, at in self.heartbeats().items() if now_s - at <= ALIVE_WINDOW_S
        }
