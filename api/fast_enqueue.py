"""The hot enqueue routes without FastAPI's per-request machinery: an ASGI middleware, innermost
of ours, that answers a POST to one of `fast_routes` by calling its endpoint itself.

Per enqueue, FastAPI's route matching (every router's routes tried in turn), dependency solving
and its request/exception wrappers cost about as much CPU as the enqueue (README, Benchmarks,
"API enqueue, second pass"). Here the route is a dict lookup on the path, and then the same
steps run, in order: the same `require_writer` (bearer token, revocation, scope), the same
payload model validating the same JSON body, the same `async def` endpoint (api/enqueue.py,
submit_async), its answer sent as it is, its errors answered by the app's own exception handlers.

Only the happy path is taken here. A request the route would refuse (no or bad token, a body its
model rejects) goes on to FastAPI untouched, body replayed, so every 401, 403 and 422 is FastAPI's
own answer; nothing has been enqueued by then. The outer middleware (metrics, rate limit, body
size, JSON only, callback URL, Idempotency-Key) runs for both paths.

A route qualifies when its only inputs are a JSON body model and the writer dependency (no path,
query, header or cookie parameter): `fast_routes` checks that, so a route that changes shape
falls back to FastAPI rather than being called wrongly.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.content_type import is_json
from api.deps import bearer, require_writer


@dataclass(frozen=True)
class FastRoute:
    route: APIRoute
    model: type[BaseModel]
    param: str
    endpoint: Callable[..., Awaitable[Response]]


def fast_routes(routes: Iterable[Any]) -> dict[str, FastRoute]:
    """The POST routes of `routes` this middleware may answer, by path."""
    found = {}
    for route in routes:
        if not isinstance(route, APIRoute) or route.methods != {"POST"}:
            continue
        dependant = route.dependant
        others = (
            dependant.path_params + dependant.query_params
            + dependant.header_params + dependant.cookie_params
        )  # fmt: skip
        body = dependant.body_params
        model = body[0].field_info.annotation if len(body) == 1 else None
        if (
            others
            or not (isinstance(model, type) and issubclass(model, BaseModel))
            or getattr(body[0].field_info, "embed", False)
            or [sub.call for sub in dependant.dependencies] != [require_writer]
            or not inspect.iscoroutinefunction(route.endpoint)
            or "{" in route.path
        ):
            continue
        found[route.path] = FastRoute(route, model, body[0].name, route.endpoint)
    return found


class FastEnqueue:
    """Install it first (innermost of the app's middleware): it runs after the outer ones."""

    def __init__(self, app: ASGIApp, *, routes: dict[str, FastRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path")
            else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:  # the body: JsonOnly, outside, has read and checked it already
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        payload = await self._prepare(scope, route, messages)
        if payload is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        scope["route"], scope["endpoint"], scope["path_params"] = route.route, route.endpoint, {}
        try:
            response = await route.endpoint(**{route.param: payload})
        except Exception as error:
            handler = _handler(scope["app"].exception_handlers, error)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), error)
        await response(scope, receive, send)

    async def _prepare(
        self, scope: Scope, route: FastRoute, messages: list[Message]
    ) -> BaseModel | None:
        """The validated payload of an authorized request, or None: let FastAPI answer."""
        if messages[-1]["type"] != "http.request":
            return None
        headers = dict(scope["headers"])
        if not is_json(headers.get(b"content-type", b"")):
            return None
        request = Request(scope)
        try:
            await require_writer(scope["app"].state.settings, await bearer(request))
            data = orjson.loads(b"".join(message.get("body", b"") for message in messages))
            return route.model.model_validate(data)
        except (HTTPException, orjson.JSONDecodeError, ValidationError):
            return None


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _handler(handlers: dict[Any, Any], error: Exception) -> Any:
    """The app's handler for `error`, found as Starlette's ExceptionMiddleware finds it (500 and
    Exception handlers are the outer ServerErrorMiddleware's, reached by raising)."""
    for kind in type(error).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None
