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

A route qualifies when its inputs are a JSON body (a model, or any type FastAPI validates) and
the writer dependency, plus path and query parameters (no header or cookie parameter):
`fast_routes` checks that, so a route that changes shape falls back to FastAPI rather than being
called wrongly. Path and query parameters are validated by FastAPI's own function
(`request_params_to_args`, the one its routing calls), a body that is not a model by
`request_body_to_args`; a parameter it refuses sends the request on to FastAPI, for its 422.
A route with a path parameter (`POST /api/jobs/{name}`) is matched by its own pattern, after the
exact paths: the caller passes only routes no other route of the app shadows (tests/api).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.content_type import is_json
from api.deps import bearer, require_writer


@dataclass(frozen=True)
class FastRoute:
    route: APIRoute
    #: The body's model when it is one (validated directly), else None (FastAPI validates it).
    model: type[BaseModel] | None
    param: str
    endpoint: Callable[..., Awaitable[Response]]

    async def arguments(self, scope: Scope, data: Any) -> dict[str, Any] | None:
        """The endpoint's keyword arguments, validated; None when FastAPI would refuse them."""
        if self.model is not None:
            body: dict[str, Any] = {self.param: self.model.model_validate(data)}
        else:
            body, errors = await request_body_to_args(
                self.route.dependant.body_params, data, embed_body_fields=False
            )
            if errors:
                return None
        dependant = self.route.dependant
        if not (dependant.path_params or dependant.query_params):
            return body
        path, path_errors = request_params_to_args(dependant.path_params, scope["path_params"])
        query, query_errors = request_params_to_args(
            dependant.query_params, QueryParams(scope["query_string"])
        )
        return None if path_errors or query_errors else {**path, **query, **body}


def fast_routes(routes: Iterable[Any]) -> dict[str, FastRoute]:
    """The POST routes of `routes` this middleware may answer, by path (with its `{...}` when it
    has path parameters)."""
    found = {}
    for route in routes:
        if not isinstance(route, APIRoute) or route.methods != {"POST"}:
            continue
        dependant = route.dependant
        body = dependant.body_params
        annotation = body[0].field_info.annotation if len(body) == 1 else None
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        if (
            dependant.header_params
            or dependant.cookie_params
            or annotation is None
            or getattr(body[0].field_info, "embed", False)
            or [sub.call for sub in dependant.dependencies] != [require_writer]
            or not inspect.iscoroutinefunction(route.endpoint)
            or ("{" in route.path) != bool(dependant.path_params)
        ):
            continue
        found[route.path] = FastRoute(route, model, body[0].name, route.endpoint)
    return found


class FastEnqueue:
    """Install it first (innermost of the app's middleware): it runs after the outer ones."""

    def __init__(self, app: ASGIApp, *, routes: dict[str, FastRoute]) -> None:
        self.app = app
        self.routes = {path: route for path, route in routes.items() if "{" not in path}
        self.patterns = [route for path, route in routes.items() if "{" in path]

    def match(self, scope: Scope) -> FastRoute | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        path = scope["path"]
        route = self.routes.get(path)
        if route is not None or not self.patterns:
            return route
        for candidate in self.patterns:
            matched = candidate.route.path_regex.match(path)
            if matched is not None:
                convertors = candidate.route.param_convertors
                scope["path_params"] = {
                    name: convertors[name].convert(value)
                    for name, value in matched.groupdict().items()
                }
                return candidate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.match(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        # The body: JsonOnly, outside, has read and checked it already.
        messages = await received(receive)
        arguments = await self._prepare(scope, route, messages)
        if arguments is None:
            await onward(self.app, scope, replaying(messages, receive), send)
            return
        await self.answer(scope, receive, send, route, arguments)

    async def answer(
        self, scope: Scope, receive: Receive, send: Send, route: FastRoute, arguments: Any
    ) -> int:
        """The endpoint's answer, sent; its errors answered by the app's handlers. Its status."""
        scope["route"], scope["endpoint"] = route.route, route.endpoint
        scope.setdefault("path_params", {})
        try:
            response = await route.endpoint(**arguments)
        except Exception as error:
            handler = _handler(scope["app"].exception_handlers, error)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), error)
        await response(scope, receive, send)
        return int(response.status_code)

    async def _prepare(
        self, scope: Scope, route: FastRoute, messages: list[Message]
    ) -> dict[str, Any] | None:
        """The validated arguments of an authorized request, or None: let FastAPI answer."""
        if messages[-1]["type"] != "http.request":
            return None
        headers = dict(scope["headers"])
        if not is_json(headers.get(b"content-type", b"")):
            return None
        return await self.arguments(scope, route, messages)

    async def arguments(
        self, scope: Scope, route: FastRoute, messages: list[Message]
    ) -> dict[str, Any] | None:
        """The validated arguments for the JSON body in `messages` of an authorized request,
        or None."""
        try:
            data = orjson.loads(b"".join(message.get("body", b"") for message in messages))
        except orjson.JSONDecodeError:
            return None
        try:
            await require_writer(scope["app"].state.settings, await bearer(Request(scope)))
            return await route.arguments(scope, data)
        except (HTTPException, ValidationError):
            return None


async def onward(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """On to `app` (the layers below, FastAPI), whose routing sets its own path parameters."""
    scope.pop("path_params", None)
    await app(scope, receive, send)


async def received(receive: Receive) -> list[Message]:
    """A request's messages up to the end of its body (or a disconnect)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def replaying(messages: list[Message], receive: Receive) -> Receive:
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
