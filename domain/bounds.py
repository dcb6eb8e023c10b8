"""Bounds shared by API parameters and job payloads, so that no input is unbounded.

Row ids are INTEGER columns (32-bit on PostgreSQL): a larger number cannot name a row, and the
database driver raises on it (SQLite: OverflowError) where the caller expects "not found".
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ID_MAX = 2**31 - 1
SITE_CODE_MAX = 8  # sites.code
TASK_ID_MAX = 64  # task ids are UUIDs; the columns that keep one are String(64)
NAME_MAX = 128  # queue, actor and model-kind names
FILENAME_MAX = 255  # stored_files.filename
OFFSET_MAX = ID_MAX
#: The widest window a planning job may cover (a year, and a day for leap years).
WINDOW_DAYS_MAX = 366

RowId = Annotated[int, Field(ge=1, le=ID_MAX)]
SiteCode = Annotated[str, Field(min_length=1, max_length=SITE_CODE_MAX)]
