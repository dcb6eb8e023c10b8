"""Bounded query and path parameters shared by the routers (limits in domain/bounds.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from domain.bounds import FILENAME_MAX, ID_MAX, NAME_MAX, OFFSET_MAX, SITE_CODE_MAX, TASK_ID_MAX

LotId = Annotated[int, Query(ge=1, le=ID_MAX)]
OptionalLotId = Annotated[int | None, Query(ge=1, le=ID_MAX)]
IdPath = Annotated[int, Path(ge=1, le=ID_MAX)]
SiteCode = Annotated[str, Query(min_length=1, max_length=SITE_CODE_MAX)]
OptionalSiteCode = Annotated[str | None, Query(min_length=1, max_length=SITE_CODE_MAX)]
TaskIdPath = Annotated[str, Path(min_length=1, max_length=TASK_ID_MAX)]
NamePath = Annotated[str, Path(min_length=1, max_length=NAME_MAX)]
FileNamePath = Annotated[str, Path(min_length=1, max_length=FILENAME_MAX)]
OptionalName = Annotated[str | None, Query(min_length=1, max_length=NAME_MAX)]
Offset = Annotated[int, Query(ge=0, le=OFFSET_MAX)]
Limit = Annotated[int, Query(ge=1, le=500)]
