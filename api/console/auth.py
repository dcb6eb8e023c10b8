"""Console login and logout, and the dependencies every console page and action uses."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.render import render
from api.console.session import (
    COOKIE,
    CSRF_HEADER,
    LOGIN_COOKIE,
    ConsoleSession,
    Sessions,
    admin_token_matches,
    csrf_matches,
)
from api.deps import ControlDep, SettingsDep, directory, still_admin
from domain.platform import clients
from runtime import act_as

router = APIRouter(prefix="/console", include_in_schema=False)


class LoginRequired(Exception):
    """A page asked for without a session: the browser goes to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


async def sessions(control: ControlDep) -> Sessions:
    return Sessions(control.client, still_admin=still_admin)


SessionsDep = Annotated[Sessions, Depends(sessions)]


def _safe_next(next_path: str) -> str:
    # Only our own pages: an open redirect would turn the login page into a phishing relay.
    allowed = next_path.startswith(("/console", "/dashboard")) and "//" not in next_path
    return next_path if allowed else "/console"


def page_session(request: Request, store: SessionsDep) -> ConsoleSession:
    """Pages: a session, or off to the login page (and back here after it)."""
    found = store.find(request.cookies.get(COOKIE))
    if found is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return found


def api_session(request: Request, store: SessionsDep) -> ConsoleSession:
    """Fragments and JSON: a session, or 401."""
    found = store.find(request.cookies.get(COOKIE))
    if found is None:
        raise HTTPException(401, detail="console session missing or expired; log in again")
    return found


async def action_session(request: Request, store: SessionsDep) -> ConsoleSession:
    """State-changing calls: a session and its CSRF token in the X-CSRF-Token header."""
    found = await run_in_threadpool(api_session, request, store)
    if not csrf_matches(found, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, detail="missing or wrong CSRF token (X-CSRF-Token header)")
    # Jobs the action sends carry who did it (async: the name must reach the handler's context).
    act_as(found.client)
    return found


PageSession = Annotated[ConsoleSession, Depends(page_session)]
ApiSession = Annotated[ConsoleSession, Depends(api_session)]
ActionSession = Annotated[ConsoleSession, Depends(action_session)]


def _cookie(response: Response, request: Request, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _login_page(
    request: Request, *, next_path: str, error: str = "", status: int = 200
) -> Response:
    form_token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status_code=status,
        title="Log in",
        next_path=_safe_next(next_path),
        form_token=form_token,
        error=error,
    )
    _cookie(response, request, LOGIN_COOKIE, form_token, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console") -> Response:  # noqa: A002
    return _login_page(request, next_path=next)


async def _form(request: Request) -> dict[str, str]:
    # One urlencoded form of three fields: parse_qsl does it (python-multipart is not needed).
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, max_num_fields=10))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    store: SessionsDep,
    form: Annotated[dict[str, str], Depends(_form)],
) -> Response:
    token, form_token = form.get("token", ""), form.get("form_token", "")
    next = form.get("next", "/console")  # noqa: A001
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, form_token):
        return _login_page(
            request, next_path=next, status=403, error="The form expired; please try again."
        )
    admin = settings.admin_token.get_secret_value()
    named = token.startswith(clients.TOKEN_PREFIX)
    if not admin and not named:
        return _login_page(
            request, next_path=next, status=503, error="The server has no ADMIN_TOKEN configured."
        )
    if admin_token_matches(token, admin):
        cookie, _ = store.open()
    else:
        # A named client's token: it must be active and hold `admin` (the console can cancel,
        # re-drive and delete; the dashboard behind the same session too).
        digest = clients.hash_token(token)
        client = directory().active(digest) if named else None
        if client is None:
            return _login_page(request, next_path=next, status=401, error="Wrong admin token.")
        if not client.allows(clients.ADMIN):
            error = f"Client {client.name!r} lacks the scope 'admin' the console needs."
            return _login_page(request, next_path=next, status=403, error=error)
        directory().used(client)
        cookie, _ = store.open(client=client.name, token_hash=digest)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _cookie(response, request, COOKIE, cookie, max_age=store.ttl_ms // 1000)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, session: ActionSession, store: SessionsDep) -> Response:
    store.close(session)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/console/login?next={quote(next_path, safe='/')}", status_code=303)
