"""`GET /api/search` without FastAPI's per-request machinery: an ASGI middleware, innermost of
ours, that answers a search by calling its endpoint itself.

FastAPI's route matching (every route of the app tried in turn, ~150), dependency solving and
its request/exception wrappers cost ~1 ms of CPU per search, as much as a cached search itself
(README, Search, "Fifth pass"). Here the route is one comparison of the path, and then the same
steps run: the route's query parameters validated by FastAPI's own function
(`request_params_to_args`, the one its routing calls), the route's settings dependency (the
app's settings), the same `async def` endpoint, its answer sent as it is.

Only the happy path is taken here. A request the route would refuse (a parameter FastAPI
rejects, a query the parser or the engine refuses) goes on to FastAPI untouched, so every 422
is FastAPI's or the app's own answer: a search is a read without a body, so asking it twice
changes nothing. The outer middleware (metrics, rate limit, body size, JSON only...) runs for
both paths. The route qualifies only while its inputs are query parameters and the settings
dependency (`search_route` checks that): a route that gains a dependency (a reader token, say)
or a header parameter falls back to FastAPI rather than being called without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import settings_dep
from domain.errors import InvalidInput

PATH = "/api/search"


def search_route(routes: Iterable[Any]) -> APIRoute | None:
    """The `GET /api/search` route of `routes` when this middleware may answer for it."""
    for route in routes:
        if isinstance(route, APIRoute) and route.path == PATH and route.methods == {"GET"}:
            dependant = route.dependant
            if (
                dependant.header_params
                or dependant.cookie_params
                or dependant.body_params
                or dependant.path_params
                or [sub.call for sub in dependant.dependencies] != [settings_dep]
            ):
                return None
            return route
    return None


class FastSearch:
    """Install it first (innermost of the app's middleware): it runs after the outer ones."""

    def __init__(self, app: ASGIApp, *, route: APIRoute | None) -> None:
        self.app = app
        self.route = route
        #: The endpoint's argument the settings dependency fills.
        self.settings_param = route.dependant.dependencies[0].name or "" if route else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.route
        if (
            route is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] != PATH
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        values, errors = request_params_to_args(
            route.dependant.query_params, QueryParams(scope["query_string"])
        )
        if errors:
            await self.app(scope, receive, send)
            return
        values[self.settings_param] = scope["app"].state.settings
        try:
            response = await route.endpoint(**values)
        except InvalidInput:
            # The endpoint's 422 (a query the parser or the engine refuses): FastAPI asks again
            # and answers it through the app's handlers, as for a request it routed itself.
            await self.app(scope, receive, send)
            return
        scope["route"], scope["endpoint"] = route, route.endpoint
        scope.setdefault("path_params", {})
        await response(scope, receive, send)
