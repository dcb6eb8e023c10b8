"""The indexer: incremental runs, full rebuilds into a new generation, optimisation, status.

Every write to the index happens in a short transaction that holds the index lock (SQLite's
write lock taken up front with BEGIN IMMEDIATE; a PostgreSQL advisory transaction lock), reads
the changes, writes documents and deletes the changes it consumed, then commits: two runs at
once take turns and the second finds nothing left, and a run killed at any point rolls back
with its changes still in the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text

from domain.progress import Progress, quiet
from domain.search import documents as docs
from domain.search import engines, schema

#: PostgreSQL advisory lock key of the search index ("gavsrch" in ASCII, any constant will do).
PG_LOCK_KEY = 0x67617673726368
#: Changes per transaction: small enough that other writers never wait long for the lock.
BATCH = 1_000
REBUILD_CHUNK = 2_000


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the index lock from its first statement to its commit."""
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # pysqlite opens no transaction before a SELECT: an explicit BEGIN IMMEDIATE takes
            # the write lock now, so the changes read are still there when they are deleted.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(select(func.pg_advisory_xact_lock(PG_LOCK_KEY)))
        yield connection


def _generations(connection: Connection) -> tuple[int, int | None]:
    row = connection.execute(
        select(schema.state.c.active_generation, schema.state.c.building_generation).where(
            schema.state.c.id == 1
        )
    ).one()
    return int(row[0]), (int(row[1]) if row[1] is not None else None)


def _reindex(connection: Connection, generations: list[int], kind: str, ids: list[int]) -> int:
    """Replace the documents of `ids` in every live generation; return how many exist."""
    engine_ = engines.for_dialect(connection.dialect.name)
    found = docs.load(connection, kind, ids)
    now = time.time()
    for generation in generations:
        engine_.forget(connection, engines.remove(connection, generation, kind, ids))
        engine_.write(connection, generation, found, now=now)
    return len(found)


def _reindex_span(connection: Connection, generation: int, kind: str, ids: list[int]) -> int:
    """A rebuild's page: `ids` are consecutive source ids, so rows and documents are read and
    replaced by range (an incremental run may have written some of them already)."""
    engine_ = engines.for_dialect(connection.dialect.name)
    span = {"after": ids[0] - 1, "upto": ids[-1]}
    found = docs.load_span(connection, kind, **span)
    engine_.forget(connection, engines.remove_span(connection, generation, kind, **span))
    engine_.write(connection, generation, found, now=time.time())
    return len(found)


def index_batch(engine: Engine, *, batch: int = BATCH) -> dict[str, int]:
    """Index up to `batch` changes in one transaction; `changes == 0` when none were left."""
    with locked(engine) as connection:
        rows = connection.execute(
            select(schema.changes.c.id, schema.changes.c.kind, schema.changes.c.ref_id)
            .order_by(schema.changes.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return {"changes": 0, "indexed": 0, "deleted": 0}
        active, building = _generations(connection)
        live = [active] + ([building] if building is not None else [])
        by_kind: dict[str, set[int]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, set()).add(row.ref_id)
        indexed = deleted = 0
        for kind, ids in by_kind.items():
            if kind not in docs.LOADERS:
                continue
            present = _reindex(connection, live, kind, sorted(ids))
            indexed += present
            deleted += len(ids) - present
        _bump_watermark(connection)
        # By id, not "<= max id": on PostgreSQL a lower id may commit after a higher one.
        connection.execute(
            schema.changes.delete().where(
                schema.changes.c.id.in_(bindparam("ids", expanding=True))
            ),
            {"ids": [row.id for row in rows]},
        )
        return {"changes": len(rows), "indexed": indexed, "deleted": deleted}


def index_changes(
    engine: Engine, *, batch: int = BATCH, budget_ms: int = 60_000, progress: Progress = quiet
) -> dict[str, Any]:
    """Everything changed or deleted since the last run, in batches, within `budget_ms`.

    A change left over when the budget runs out stays in the log for the next run.
    """
    started = time.perf_counter()
    totals = {"changes": 0, "indexed": 0, "deleted": 0, "batches": 0}
    while True:
        done = index_batch(engine, batch=batch)
        if not done["changes"]:
            break
        totals["batches"] += 1
        for key in ("changes", "indexed", "deleted"):
            totals[key] += done[key]
        progress(50, f"{totals['changes']} changes indexed")
        if (time.perf_counter() - started) * 1000 > budget_ms:
            break
    pending = status(engine)["pending_changes"]
    return {**totals, "pending_changes": pending, "duration_ms": _ms_since(started)}


def rebuild(
    engine: Engine, *, chunk: int = REBUILD_CHUNK, progress: Progress = quiet
) -> dict[str, Any]:
    """Build a new generation from the source tables, switch to it atomically, drop the old.

    Searches keep answering from the active generation until the switch; incremental runs
    meanwhile update both generations, so nothing written during the rebuild is missed.
    """
    started = time.perf_counter()
    with locked(engine) as connection:
        active, building = _generations(connection)
        if building is not None:
            # A rebuild that died half-way: its generation is started again from scratch.
            _drop_generation(connection, building)
        building = max(active, building or 0) + 1
        connection.execute(
            schema.state.update().where(schema.state.c.id == 1).values(building_generation=building)
        )
    counts: dict[str, int] = {}
    for position, kind in enumerate(schema.KINDS):
        after = 0
        counts[kind] = 0
        while True:
            with locked(engine) as connection:
                ids = docs.next_ids(connection, kind, after=after, size=chunk)
                if not ids:
                    break
                counts[kind] += _reindex_span(connection, building, kind, ids)
            after = ids[-1]
        progress(90 * (position + 1) / len(schema.KINDS), f"{kind}: {counts[kind]} documents")
    with locked(engine) as connection:
        connection.execute(
            schema.state.update()
            .where(schema.state.c.id == 1)
            .values(
                active_generation=building, building_generation=None, rebuilt_at_unix_s=time.time()
            )
        )
        _bump_watermark(connection)
    dropped = drop_stale(engine)
    return {
        "generation": building,
        "documents": counts,
        "old_documents_dropped": dropped,
        "duration_ms": _ms_since(started),
    }


def _bump_watermark(connection: Connection) -> None:
    """Mark the active index changed, in the transaction that changes it."""
    connection.execute(
        schema.state.update()
        .where(schema.state.c.id == 1)
        .values(watermark=schema.state.c.watermark + 1)
    )


def watermark(connection: Connection) -> int:
    """How many commits have changed the active index: equal watermarks, equal answers."""
    # Read before every search, cached or not: plain SQL skips the statement's compilation
    # and cache-key walk (a third of a cached search's CPU through `select()`).
    return int(
        connection.exec_driver_sql("SELECT watermark FROM search_state WHERE id = 1").scalar_one()
    )


def _drop_generation(connection: Connection, generation: int, *, limit: int | None = None) -> int:
    ids_query = select(schema.documents.c.id).where(schema.documents.c.generation == generation)
    if limit is not None:
        ids_query = ids_query.limit(limit)
    ids = list(connection.execute(ids_query).scalars())
    if ids:
        engines.for_dialect(connection.dialect.name).forget(connection, ids)
        connection.execute(
            schema.documents.delete().where(
                schema.documents.c.id.in_(bindparam("ids", expanding=True))
            ),
            {"ids": ids},
        )
    return len(ids)


def drop_stale(engine: Engine, *, chunk: int = 5_000) -> int:
    """Delete the documents of generations neither active nor being built, a chunk at a time."""
    dropped = 0
    while True:
        with locked(engine) as connection:
            active, building = _generations(connection)
            live = [active] + ([building] if building is not None else [])
            stale = connection.execute(
                select(schema.documents.c.generation)
                .where(schema.documents.c.generation.not_in(live))
                .limit(1)
            ).scalar()
            if stale is None:
                return dropped
            removed = _drop_generation(connection, int(stale), limit=chunk)
        dropped += removed


def optimize(engine: Engine) -> dict[str, Any]:
    """Purge stale documents, then the engine's own merge (FTS5 optimize; GIN + VACUUM)."""
    started = time.perf_counter()
    dropped = drop_stale(engine)
    merged = engines.for_dialect(engine.dialect.name).optimize(engine)
    with locked(engine) as connection:
        connection.execute(
            schema.state.update()
            .where(schema.state.c.id == 1)
            .values(optimized_at_unix_s=time.time())
        )
    return {"stale_documents_dropped": dropped, **merged, "duration_ms": _ms_since(started)}


def status(engine: Engine) -> dict[str, Any]:
    """Index freshness and size: pending changes, lag of the oldest, documents by kind."""
    with engine.connect() as connection:
        pending, oldest = connection.execute(
            select(func.count(), func.min(schema.changes.c.changed_at_unix_s))
        ).one()
        now = connection.execute(text(_db_now(connection))).scalar_one()
        state = connection.execute(select(schema.state).where(schema.state.c.id == 1)).one()
        by_kind = dict.fromkeys(schema.KINDS, 0)
        for kind, count in connection.execute(
            select(schema.documents.c.kind, func.count())
            .where(schema.documents.c.generation == state.active_generation)
            .group_by(schema.documents.c.kind)
        ).all():
            by_kind[kind] = int(count)
    return {
        "engine": engines.for_dialect(engine.dialect.name).name,
        "pending_changes": int(pending),
        "lag_s": max(0.0, float(now) - float(oldest)) if oldest is not None else 0.0,
        "documents": by_kind,
        "active_generation": state.active_generation,
        "rebuilding": state.building_generation is not None,
        "rebuilt_at_unix_s": state.rebuilt_at_unix_s,
        "optimized_at_unix_s": state.optimized_at_unix_s,
    }


def _db_now(connection: Connection) -> str:
    # The database's clock stamped the changes: measuring against it keeps host skew out.
    if connection.dialect.name == "sqlite":
        return "SELECT (julianday('now') - 2440587.5) * 86400.0"
    return "SELECT extract(epoch from clock_timestamp())"


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
