"""For the export tests: readers of produced files (pypdf for PDFs, sha256 of bytes), and the
`exports` worker as the Procfile runs it."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
import redis
from pypdf import PdfReader

from tests.support.workers import WorkerProcess


def pdf_text(source: Path | bytes) -> tuple[int, str]:
    """Pages and extracted text of a PDF file or of PDF bytes."""
    reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source)
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start_exports_worker(
    client: redis.Redis,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    threads: int = 4,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """A real worker on the production actors, consuming `exports` (4 threads, as in the
    Procfile), logging to a fresh folder."""
    return WorkerProcess(
        client,
        module="actors",
        queues=("exports",),
        threads=threads,
        env=env,
        log_path=tmp_path_factory.mktemp("exports-logs") / "exports.log",
    )
