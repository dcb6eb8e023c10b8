"""Exports benchmark: wall time and peak memory of the lot PDF, the site PDF, the lot workbook
and a 1,000,000-row gavage CSV. Run by `python -m ops.bench`; JSON on stdout.

The data is the default demo (scale 1, seed 42) in a throw-away SQLite file. For the CSV, a copy
of it gets ~70 clones of every lot and its feeding records (INSERT ... SELECT with shifted ids
and suffixed codes, a few seconds) until it holds at least 1,000,000 feeding records.

Each export runs in a fresh `python -m ops.bench.exports --case ...` process, through the same
`domain.reports.runs` function a worker calls (query, render, write under EXPORT_DIR with its
sha256, the `files` row), so its peak RSS (VmHWM) is its own. `wall_s` is the export itself;
`import_s` (Python modules loaded once per worker process) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

TODAY = date(2026, 1, 8)
CSV_ROWS = 1_000_000
TARGETS = {
    "lot_pdf": {"wall_s": 1.5},
    "site_pdf": {"wall_s": 5.0},
    "lot_xlsx": {"wall_s": 2.0},
    "gavage_csv_1m": {"wall_s": 15.0, "peak_rss_mb": 300.0},
}


def _peak_rss_mb() -> float:
    """The process's high-water resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: str, database_url: str, export_dir: Path) -> dict[str, Any]:
    """One export in this process; timings and memory as JSON-able figures."""
    started = time.perf_counter()
    from domain.platform import db
    from domain.platform.files import FileStore
    from domain.reports import runs

    imported = time.perf_counter()
    baseline = _peak_rss_mb()
    engine = db.make_engine(database_url)
    with db.session_factory(engine)() as session, session.begin():
        ctx = runs.ExportContext(
            session, FileStore(export_dir, retention_days=7), datetime.now(UTC), None
        )
        begin = time.perf_counter()
        if case == "lot_pdf":
            result = runs.lot_pdf(ctx, lot_id=3472, report_type="complete")
        elif case == "site_pdf":
            result = runs.site_pdf(
                ctx, site_code="LL", date_debut=date(2025, 1, 1), date_fin=date(2025, 12, 31)
            )
        elif case == "lot_xlsx":
            result = runs.lot_xlsx(ctx, lot_id=3472)
        elif case == "gavage_csv_1m":
            result = runs.table_csv(ctx, "gavage")
        else:
            raise SystemExit(f"unknown case {case!r}")
        wall = time.perf_counter() - begin
    return {
        "wall_s": round(wall, 3),
        "import_s": round(imported - started, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
        "file_size": result["file_size"],
        **({"rows": result["rows"]} if "rows" in result else {}),
    }


def _measure(case: str, database_url: str, export_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "ops.bench.exports", "--case", case,
         "--database-url", database_url, "--export-dir", str(export_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures: dict[str, Any] = json.loads(done.stdout)
    checks = {
        name: {"target": target, "measured": figures[name], "pass": figures[name] <= target}
        for name, target in TARGETS[case].items()
    }
    return {**figures, "targets": checks, "pass": all(c["pass"] for c in checks.values())}


def grow_feeding_records(database_url: str, *, at_least: int) -> dict[str, int]:
    """Clone every lot with its feeding records (ids shifted by 1000 per copy) until the table
    holds `at_least` rows."""
    from sqlalchemy import func, select, text

    from domain.models import FeedingRecord, Lot
    from domain.platform import db

    engine = db.make_engine(database_url)
    lot_columns = ", ".join(c.name for c in Lot.__table__.columns if c.name not in ("id", "code"))
    record_columns = ", ".join(
        c.name for c in FeedingRecord.__table__.columns if c.name not in ("id", "lot_id")
    )
    with engine.begin() as connection:
        base = connection.execute(select(func.count()).select_from(FeedingRecord)).scalar_one()
        last_id = connection.execute(select(func.max(Lot.id))).scalar_one()
        copies = -(-(at_least - base) // base)
        shift = 1000 * (1 + last_id // 1000)
        for copy in range(1, copies + 1):
            offset = copy * shift
            connection.execute(
                text(
                    f"INSERT INTO lots (id, code, {lot_columns}) "
                    f"SELECT id + {offset}, code || '-' || {copy}, {lot_columns} "
                    f"FROM lots WHERE id <= {last_id}"
                )
            )
            connection.execute(
                text(
                    f"INSERT INTO feeding_records (lot_id, {record_columns}) "
                    f"SELECT lot_id + {offset}, {record_columns} "
                    f"FROM feeding_records WHERE lot_id <= {last_id}"
                )
            )
        total = connection.execute(select(func.count()).select_from(FeedingRecord)).scalar_one()
    engine.dispose()
    return {"demo_feeding_records": base, "copies": copies, "feeding_records": total}


def main() -> dict[str, Any]:
    from domain import demo
    from domain.platform import db

    tmp = Path(tempfile.mkdtemp(prefix="gaveurs-bench-exports-"))
    demo_path = tmp / "demo.db"
    url = f"sqlite:///{demo_path}"
    db.migrate(url)
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session, session.begin():
        summary = demo.generate(session, seed=42, scale=1.0, today=TODAY)
    engine.dispose()
    big_path = tmp / "big.db"
    big_path.write_bytes(demo_path.read_bytes())
    started = time.perf_counter()
    grown: dict[str, Any] = grow_feeding_records(f"sqlite:///{big_path}", at_least=CSV_ROWS)
    grown["seconds"] = round(time.perf_counter() - started, 1)
    cases = {
        "lot_pdf": _measure("lot_pdf", url, tmp / "exports"),
        "site_pdf": _measure("site_pdf", url, tmp / "exports"),
        "lot_xlsx": _measure("lot_xlsx", url, tmp / "exports"),
        "gavage_csv_1m": _measure("gavage_csv_1m", f"sqlite:///{big_path}", tmp / "exports"),
    }
    return {
        "dataset": summary.as_dict(),
        "csv_dataset": grown,
        "cases": {
            "lot_pdf": "lot 3472, complete report",
            "site_pdf": "site LL, 2025-01-01..2025-12-31",
            "lot_xlsx": "lot 3472",
            "gavage_csv_1m": "every feeding record of the grown database",
        },
        "results": cases,
        "pass": all(result["pass"] for result in cases.values()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case")
    parser.add_argument("--database-url")
    parser.add_argument("--export-dir", type=Path)
    arguments = parser.parse_args()
    if arguments.case:
        output = run_case(arguments.case, arguments.database_url, arguments.export_dir)
    else:
        output = main()
    json.dump(output, sys.stdout, indent=2, default=str)
    print()
