"""Dramatiq's Results middleware, quiet for the jobs that store no result (nearly all of them).

Stock Results looks the actor up and reads two options on every job, then builds its "value
discarded" warning (formatted eagerly, though runtime.setup silences that logger: the job
record keeps each result). `quiet_results` gives a Results instance hooks that read the actor's
`store_results` once per actor and skip a job that stores nothing (neither its actor nor its
message asks). It stays a stock Results, not a subclass: Dramatiq's worker looks for the
middleware with `type(m) is Results`, and without it logs a warning for every job that returns
a value.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound
from dramatiq.results import Results


def quiet_results(results: Results) -> Results:
    """`results`, with its three hooks skipping the jobs that store no result."""
    stores_by_actor: dict[str, bool] = {}
    stock = Results  # the class's own hooks, called for the jobs that store

    def stores(broker: dramatiq.Broker, message: MessageProxy) -> bool:
        if "store_results" in message.options:
            return bool(message.options["store_results"])
        found = stores_by_actor.get(message.actor_name)
        if found is None:
            try:
                actor = broker.get_actor(message.actor_name)
            except ActorNotFound:
                return False
            found = bool(actor.options.get("store_results", results.store_results))
            stores_by_actor[message.actor_name] = found
        return found

    def after_process_message(
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if stores(broker, message):
            stock.after_process_message(
                results, broker, message, result=result, exception=exception
            )

    def after_skip_message(broker: dramatiq.Broker, message: MessageProxy) -> None:
        if stores(broker, message):
            stock.after_skip_message(results, broker, message)

    def after_nack(broker: dramatiq.Broker, message: MessageProxy) -> None:
        if stores(broker, message):
            stock.after_nack(results, broker, message)

    # Instance attributes: runtime/hooks.py calls what the instance holds.
    vars(results).update(
        after_process_message=after_process_message,
        after_skip_message=after_skip_message,
        after_nack=after_nack,
    )
    return results
