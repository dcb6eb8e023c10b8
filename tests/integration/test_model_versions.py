"""Model versions saved at once (domain/ml/store.py), on a real SQLite file and a real
PostgreSQL: retrain-all runs a forecast per site on two ML workers, and a planning run may end
while another does; each save gets its own version and keeps its own artefact."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from domain.ml import store
from domain.models import MlModel
from domain.platform import db
from tests.integration.test_search import fresh_database

pytestmark = pytest.mark.slow

SAVES = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = fresh_database(request.param, tmp_path, lambda: request.getfixturevalue("postgres"))
    db.migrate(url)
    made = db.make_engine(url)
    yield made
    made.dispose()


def _save(engine: Engine, model_dir: Path, run: int, start: threading.Barrier) -> None:
    with db.session_factory(engine)() as session, session.begin():
        start.wait()
        store.save_model(
            session,
            model_dir=model_dir,
            kind="abattage",
            params={"run": run},
            metrics={},
            data_window={},
            artefact={"plan": [run] * 2_000},
            task_id=f"task-{run}",
        )


def test_models_of_one_kind_saved_at_once_get_their_own_version_and_artefact(
    engine: Engine, tmp_path: Path
) -> None:
    # Given six runs that save a model of the same kind at the same moment
    start = threading.Barrier(SAVES)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            _save(engine, tmp_path / "models", n, start)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(SAVES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every save succeeded, with versions 1 to 6
    assert errors == []
    with db.session_factory(engine)() as session:
        rows = session.scalars(select(MlModel).order_by(MlModel.version)).all()
    assert [row.version for row in rows] == list(range(1, SAVES + 1))
    # And each row's artefact is its own run's, under its own version's name
    for row in rows:
        path = Path(row.artefact_path)
        assert path.name == f"v{row.version}.json"
        assert json.loads(path.read_text())["plan"][0] == row.params["run"]
