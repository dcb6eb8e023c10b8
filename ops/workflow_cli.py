"""`gaveurs workflow submit|show|cancel`: workflows from the command line (runtime/flows.py).

gaveurs workflow submit graph.json        # the JSON POST /api/workflows takes ("-": stdin)
gaveurs workflow show WORKFLOW_ID --wait  # the tree, redrawn live until it ends
gaveurs workflow cancel WORKFLOW_ID
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.tree import Tree

workflow_app = typer.Typer(help="Workflows: submit, show, cancel.", no_args_is_help=True)
STYLE = {
    "SUCCESS": "green",
    "FAILURE": "red",
    "REVOKED": "magenta",
    "CANCELLED": "magenta",
    "STARTED": "cyan",
    "RETRY": "yellow",
}
FINAL = ("SUCCESS", "FAILURE", "REVOKED")
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def tree(view: dict[str, Any]) -> Tree:
    """The graph as a tree: each step under the step it waits for last in the list (a step with
    several dependencies is drawn once, under its last one, naming the others)."""
    head = f"[bold]{view['name']}[/] {view['workflow_id']} {view['state']} {view['progress']}%"
    root = Tree(head)
    nodes: dict[str, Tree] = {}
    for step in view["steps"]:
        deps = step["depends_on"]
        parent = nodes.get(deps[-1], root) if deps else root
        style = STYLE.get(step["state"], "white")
        others = f" (after {', '.join(deps)})" if len(deps) > 1 else ""
        label = f"{step['name']} [{style}]{step['state']}[/] {step['progress']}%{others}"
        if step["error"]:
            label += f" [red]{str(step['error'].get('message', ''))[:80]}[/]"
        nodes[step["name"]] = parent.add(label)
    return root


@workflow_app.command("submit")
def submit(
    graph: Annotated[str, typer.Argument(help="a JSON file of the graph, or - for stdin")],
    as_json: JsonOption = False,
) -> None:
    """Validate a graph of steps whole and start it; nothing is enqueued when a step is bad."""
    from ops.cli import _emit, _redis_errors, _runtime
    from runtime import WorkflowSpec, workflows

    _runtime()
    text = sys.stdin.read() if graph == "-" else Path(graph).read_text()
    try:
        spec = WorkflowSpec.model_validate_json(text)
    except ValidationError as error:
        typer.echo(f"error: invalid workflow graph: {error}", err=True)
        raise typer.Exit(1) from None
    with _redis_errors():
        submitted = workflows().submit(spec)
    data = {"workflow_id": submitted.workflow_id, "steps": submitted.steps}
    _emit(data, as_json, lambda: f"workflow {submitted.workflow_id}: {len(submitted.steps)} steps")


@workflow_app.command("show")
def show(
    workflow_id: str,
    wait: Annotated[bool, typer.Option("--wait", help="redraw live until it ends")] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most")] = 3600,
    as_json: JsonOption = False,
) -> None:
    """A workflow's state and progress, and each step's."""
    from ops.cli import _redis_errors, _runtime
    from runtime import workflows

    _runtime()
    with _redis_errors():
        view = workflows().show(workflow_id)
    if wait and not as_json:
        deadline = time.monotonic() + timeout
        with Live(tree(view), console=Console(), refresh_per_second=4) as live:
            while view["state"] not in FINAL or view["finished"] < view["total"]:
                if view["state"] == "REVOKED" or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
                with _redis_errors():
                    view = workflows().show(workflow_id)
                live.update(tree(view))
        raise typer.Exit(0 if view["state"] == "SUCCESS" else 1)
    if as_json:
        typer.echo(json.dumps(view, indent=2, default=str, ensure_ascii=False))
    else:
        Console().print(tree(view))


@workflow_app.command("cancel")
def cancel(workflow_id: str, as_json: JsonOption = False) -> None:
    """Cancel every step not finished (queued ones skipped, running ones interrupted)."""
    from ops.cli import _emit, _redis_errors, _runtime
    from runtime import cancel_workflow

    _runtime()
    with _redis_errors():
        data = cancel_workflow(workflow_id)
    _emit(data, as_json, lambda: json.dumps(data, indent=2))
