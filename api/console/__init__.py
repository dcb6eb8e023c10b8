"""The operator console at /console: jobs, queues and dead letters, workers, schedules, behind
an admin login (session cookie + CSRF token). Server-rendered with Jinja2; console.js (our own,
~80 lines, no library) polls each page's fragment and sends the actions."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.console import actions, auth, pages
from api.console.auth import LoginRequired, login_redirect
from api.console.render import HERE

PREFIX = "/console"


async def _to_login(request: Request, error: Exception) -> Response:
    assert isinstance(error, LoginRequired)
    return login_redirect(error.next_path)


def install(app: FastAPI) -> None:
    app.include_router(auth.router)
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(LoginRequired, _to_login)
