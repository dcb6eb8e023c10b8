"""Who asked for a job: the name of the API client (or "scheduler", "cli") travels with it.

An entry point says who is acting (`act_as`, `acting_as`); every message built while it acts
carries the name in its options (`client`), which the job record and the journal keep. Inside a
worker the running message's client is the acting one, so the jobs a job sends carry it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from dramatiq.middleware import CurrentMessage

#: The message option that names the submitting client.
OPTION = "client"

_acting: ContextVar[str | None] = ContextVar("gaveurs_client", default=None)


def act_as(name: str | None) -> Token[str | None]:
    """From now on in this context (an API request, a CLI run), jobs are sent by `name`."""
    return _acting.set(name)


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


def current_client() -> str | None:
    """The acting client: the one set here, else (in a worker) the running job's."""
    name = _acting.get()
    if name is None:
        message: Any = CurrentMessage.get_current_message()
        if message is not None:
            name = message.options.get(OPTION)
    return name
