"""`gaveurs gdpr export|erase`: a person's data as JSON, then their erasure in this process."""

from __future__ import annotations

import json
import os
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from domain.models import Gaveur, Site
from domain.platform import db
from ops.cli import app

runner = CliRunner()


def test_export_then_erase_a_gaveur(demo_database: str) -> None:
    tag = uuid.uuid4().hex[:8]
    with Session(db.make_engine(os.environ["DATABASE_URL"])) as session, session.begin():
        gaveur = Gaveur(
            site_id=session.scalars(select(Site.id).limit(1)).one(),
            code=f"C{tag}",
            first_name="Anselme",
            last_name=f"Cli{tag}",
            phone="+33611223344",
            email=f"anselme.{tag}@example.org",
        )
        session.add(gaveur)
        session.flush()
        gaveur_id = gaveur.id

    exported = runner.invoke(app, ["gdpr", "export", "--gaveur", str(gaveur_id)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["gaveurs"][0]["last_name"] == f"Cli{tag}"

    erased = runner.invoke(app, ["gdpr", "erase", "--email", f"anselme.{tag}@example.org", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.output)["erased"]["gaveurs"] == 1
    after = runner.invoke(app, ["gdpr", "export", "--gaveur", str(gaveur_id)])
    assert f"Cli{tag}" not in after.output and "erasure" in after.output

    unknown = runner.invoke(app, ["gdpr", "erase", "--gaveur", "999999", "--yes"])
    assert unknown.exit_code == 1 and "no gaveur 999999" in unknown.output
    neither = runner.invoke(app, ["gdpr", "export"])
    assert neither.exit_code == 1 and "exactly one" in neither.output
