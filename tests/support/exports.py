"""Readers of produced files for the export tests: pypdf for PDFs, sha256 of bytes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from pypdf import PdfReader


def pdf_text(source: Path | bytes) -> tuple[int, str]:
    """Pages and extracted text of a PDF file or of PDF bytes."""
    reader = PdfReader(io.BytesIO(source) if isinstance(source, bytes) else source)
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
