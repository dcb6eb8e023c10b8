"""The app's routes and the auth each one declares, found by walking the app itself.

Tests iterate over these instead of listing routes, so a route added later is checked too.
FastAPI (0.16x) keeps included routers nested in `app.routes`; `iter_route_contexts` yields each
route with its effective path and dependencies (router prefix and router-level `dependencies=`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import Mount

from api.console.auth import action_session, api_session, page_session
from api.deps import require_admin, require_audit_reader, require_exports_reader, require_writer

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def api_routes(app: FastAPI) -> list[RouteContext]:
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def mounts(app: FastAPI) -> list[Mount]:
    return [route for route in app.routes if isinstance(route, Mount)]


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def needs_admin(route: RouteContext) -> bool:
    return require_admin in set(_calls(route.dependant))


def needs_writer(route: RouteContext) -> bool:
    """Any bearer-token scope short of admin."""
    readers = {require_writer, require_exports_reader, require_audit_reader}
    return bool(readers & set(_calls(route.dependant)))


def needs_console_session(route: RouteContext) -> bool:
    """Console routes: a session cookie (pages, fragments) and its CSRF token (actions)."""
    return bool({page_session, api_session, action_session} & set(_calls(route.dependant)))


def needs_csrf(route: RouteContext) -> bool:
    return action_session in set(_calls(route.dependant))


def write_methods(route: RouteContext) -> list[str]:
    return sorted(set(route.methods or ()) - READ_METHODS)


def find_route(app: FastAPI, path: str, method: str) -> RouteContext:
    for route in api_routes(app):
        if route.path == path and method.upper() in (route.methods or ()):
            return route
    raise LookupError(f"no route {method} {path}")
