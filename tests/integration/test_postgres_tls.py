"""PostgreSQL over TLS with the server's certificate verified (`sslmode=verify-full`), on a real
server with certificates this test makes: the platform's engine and migrations run encrypted, and
a server whose certificate our CA did not sign is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text

from domain.platform import db
from ops.local_postgres import PostgresServer
from tests.support.certificates import write_certificates

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, Path]]:
    certs = write_certificates(tmp_path_factory.mktemp("pg-certs"))
    server = PostgresServer(tls=certs)
    yield server, certs["ca"]
    server.stop()


def test_the_engine_and_migrations_run_over_verified_tls(
    tls_postgres: tuple[PostgresServer, Path],
) -> None:
    server, ca = tls_postgres
    url = server.create_database("gaveurs_tls") + f"?sslmode=verify-full&sslrootcert={ca}"
    # The migrations and the engine take the URL as DATABASE_URL would give it
    db.migrate(url)
    engine = db.make_engine(url)
    with engine.connect() as connection:
        encrypted = connection.execute(
            text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ).one()
        tables = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    assert encrypted.ssl is True and encrypted.version.startswith("TLS")
    assert tables == 1
    engine.dispose()


def test_a_server_certificate_from_another_ca_is_refused(
    tls_postgres: tuple[PostgresServer, Path], tmp_path: Path
) -> None:
    server, _ = tls_postgres
    stranger = write_certificates(tmp_path)["ca"]
    url = server.create_database("gaveurs_tls_refused") + (
        f"?sslmode=verify-full&sslrootcert={stranger}"
    )
    engine = db.make_engine(url)
    # (both CAs share a name: OpenSSL finds "ours" and the signature check fails)
    with pytest.raises(sqlalchemy.exc.OperationalError, match="SSL error|certificate verify"):
        engine.connect()
    engine.dispose()
