"""Full-text search over lots, consumer feedback, anomalies, certificates and produced files.

An embedded engine, the database's own: SQLite FTS5 (stems from Snowball French, accents
folded) or PostgreSQL tsvector + GIN with the `french` configuration. Triggers log every change
to indexed rows (schema.py); `index_changes` consumes the log, `rebuild` fills a new generation
and switches to it atomically, `optimize` runs the engine's merge.
"""

from __future__ import annotations

from domain.search.index import index_changes, optimize, rebuild, status
from domain.search.query import search
from domain.search.schema import KINDS, is_search_table
from domain.search.text import QuerySyntaxError

__all__ = [
    "KINDS",
    "QuerySyntaxError",
    "index_changes",
    "is_search_table",
    "optimize",
    "rebuild",
    "search",
    "status",
]
