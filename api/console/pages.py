"""Console pages, and the fragments each page polls to stay current without a reload.

Every page is one template that includes its fragment; the fragment's own route renders it
alone, and console.js swaps it in every few seconds (short polling, see README "Console")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console import views
from api.console.auth import ApiSession, PageSession
from api.console.render import render
from api.console.session import ConsoleSession
from api.deps import ControlDep, SettingsDep
from api.params import TaskIdPath
from domain.platform.settings import Settings
from runtime import Control

router = APIRouter(prefix="/console", include_in_schema=False, default_response_class=HTMLResponse)

Text = Annotated[str, Query(max_length=200)]
Position = Annotated[int, Query(ge=0, le=10_000_000)]
#: Poll periods: a running job's bar moves smoothly; lists change less often.
JOB_POLL_MS = 1_000
LIST_POLL_MS = 3_000


def _page(
    request: Request,
    session: ConsoleSession,
    *,
    name: str,
    title: str,
    fragment_url: str,
    poll_ms: int = LIST_POLL_MS,
    **context: Any,
) -> Response:
    return render(
        request,
        f"{name}.html",
        title=title,
        section=name,
        csrf=session.csrf,
        who=session.client,
        fragment=f"fragments/{name}.html",
        fragment_url=fragment_url,
        poll_ms=poll_ms,
        **context,
    )


def _fragment(request: Request, name: str, **context: Any) -> Response:
    response = render(request, f"fragments/{name}.html", **context)
    response.headers["Cache-Control"] = "no-store"
    return response


#: The pages that take no parameter: name -> (title, what it shows).
SIMPLE: dict[str, tuple[str, Callable[[Control, Settings], dict[str, Any]]]] = {
    "overview": ("Overview", views.overview),
    "queues": ("Queues", lambda control, _: views.queues(control)),
    "workers": ("Workers", lambda control, _: views.workers(control)),
    "schedules": ("Schedules", views.schedules),
}


def _simple(name: str, title: str, build: Callable[[Control, Settings], dict[str, Any]]) -> None:
    path = "" if name == "overview" else f"/{name}"

    def page(
        request: Request, session: PageSession, control: ControlDep, settings: SettingsDep
    ) -> Response:
        return _page(
            request,
            session,
            name=name,
            title=title,
            fragment_url=f"/console/fragments/{name}",
            **build(control, settings),
        )

    def fragment(
        request: Request, _: ApiSession, control: ControlDep, settings: SettingsDep
    ) -> Response:
        return _fragment(request, name, **build(control, settings))

    router.add_api_route(path, page, methods=["GET"], name=f"console_{name}")
    router.add_api_route(
        f"/fragments/{name}", fragment, methods=["GET"], name=f"console_{name}_fragment"
    )


for _name, (_title, _build) in SIMPLE.items():
    _simple(_name, _title, _build)


def jobs_context(
    control: ControlDep,
    state: Text = "",
    queue: Text = "",
    name: Text = "",
    search: Text = "",
    client: Text = "",
    position: Position = 0,
) -> dict[str, Any]:
    """The jobs list for the query's filters (declared after the session, so checked after)."""
    return views.jobs(
        control,
        state=state,
        queue=queue,
        name=name,
        search=search,
        client=client,
        position=position,
    )


JobsContext = Annotated[dict[str, Any], Depends(jobs_context)]


@router.get("/jobs")
def jobs_page(request: Request, session: PageSession, context: JobsContext) -> Response:
    query = request.url.query
    return _page(
        request,
        session,
        name="jobs",
        title="Jobs",
        fragment_url="/console/fragments/jobs" + (f"?{query}" if query else ""),
        **context,
    )


@router.get("/fragments/jobs")
def jobs_fragment(request: Request, _: ApiSession, context: JobsContext) -> Response:
    return _fragment(request, "jobs", **context)


@router.get("/jobs/{task_id}")
def job_page(
    request: Request, session: PageSession, control: ControlDep, task_id: TaskIdPath
) -> Response:
    return _page(
        request,
        session,
        name="job",
        title=f"Job {task_id}",
        fragment_url=f"/console/fragments/job/{task_id}",
        poll_ms=JOB_POLL_MS,
        **views.job(control, task_id),
    )


@router.get("/fragments/job/{task_id}")
def job_fragment(
    request: Request, _: ApiSession, control: ControlDep, task_id: TaskIdPath
) -> Response:
    return _fragment(request, "job", **views.job(control, task_id))
