"""Retries driven by a per-actor RetryPolicy: transient errors back off, others fail at once."""

from __future__ import annotations

import time
import traceback
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Retries
from dramatiq.middleware.time_limit import TimeLimitExceeded
from dramatiq_abort import Abort

from runtime.outage import REDIS_ERRORS, until_redis_answers
from runtime.policy import MAX_BACKOFF_LIMIT_MS, MAX_RETRIES_LIMIT, RetryPolicy

#: Dramatiq's own retry options. An actor declared with them and no `retry` policy (a plain
#: `@dramatiq.actor(max_retries=1)`) gets Dramatiq's behaviour: every exception is retried.
STOCK_OPTIONS = ("max_retries", "min_backoff", "max_backoff", "retry_when")


class PolicyRetries(Retries):
    """Dramatiq's Retries, driven by the `retry` actor option (a RetryPolicy).

    Cancelled jobs (Abort) are neither retried nor dead-lettered: they end REVOKED. A job that hit
    its hard time limit is not retried either: it would hit it again.
    """

    def __init__(self, *, default_policy: RetryPolicy, outage_patience_s: float = 300.0) -> None:
        self.outage_patience_s = outage_patience_s
        super().__init__(
            max_retries=default_policy.max_retries,
            min_backoff=default_policy.min_backoff_ms,
            max_backoff=default_policy.max_backoff_ms,
        )
        self.default_policy = default_policy

    @property
    def actor_options(self) -> set[str]:
        return super().actor_options | {"retry"}

    def policy_for(
        self, actor: dramatiq.Actor[Any, Any], message: MessageProxy | None = None
    ) -> RetryPolicy:
        """The actor's `retry` policy; else one from Dramatiq's options set on the message or
        the actor (message first, as in Dramatiq); else the default policy."""
        policy = actor.options.get("retry")
        if policy is not None:
            assert isinstance(policy, RetryPolicy)
            return policy
        stock = self._stock_options(actor, message)
        if not stock.keys() - {"retry_when"}:
            return self.default_policy
        min_backoff = int(stock.get("min_backoff", self.min_backoff))
        max_backoff = int(stock.get("max_backoff", self.max_backoff))
        return RetryPolicy(
            max_retries=min(int(stock.get("max_retries", self.max_retries)), MAX_RETRIES_LIMIT),
            min_backoff_ms=min(min_backoff, MAX_BACKOFF_LIMIT_MS),
            max_backoff_ms=min(max(max_backoff, min_backoff), MAX_BACKOFF_LIMIT_MS),
            retry_on=(Exception,),
        )

    @staticmethod
    def _stock_options(
        actor: dramatiq.Actor[Any, Any], message: MessageProxy | None
    ) -> dict[str, Any]:
        found = {}
        for name in STOCK_OPTIONS:
            value = message.options.get(name) if message is not None else None
            value = actor.options.get(name) if value is None else value
            if value is not None:
                found[name] = value
        return found

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or isinstance(exception, Abort):
            return

        actor = broker.get_actor(message.actor_name)
        retries = int(message.options.get("retries", 0))
        message.options["traceback"] = "".join(
            traceback.format_exception(
                type(exception), exception, exception.__traceback__, limit=30
            )
        )
        throws = message.options.get("throws") or actor.options.get("throws")
        policy = self.policy_for(actor, message)
        permanent = isinstance(exception, TimeLimitExceeded) or bool(
            throws and isinstance(exception, throws)
        )
        stock = {} if "retry" in actor.options else self._stock_options(actor, message)
        if "retry_when" in stock:
            wanted = bool(stock["retry_when"](retries, exception))
        else:
            wanted = policy.should_retry(retries, exception)
        if permanent or not wanted:
            message.options["failure_reason"] = (
                "permanent error"
                if permanent or retries < policy.max_retries
                else f"retries exhausted after {retries} retries"
            )
            self.logger.warning(
                "Message %r failed for good (%s).",
                message.message_id,
                message.options["failure_reason"],
            )
            message.fail()
            return

        delay = policy.backoff_ms(retries)
        message.options["retries"] = retries + 1
        message.options["requeue_timestamp"] = int(time.time() * 1000)
        message.options["retry_eta"] = int(time.time() * 1000) + delay
        self.logger.info("Retrying message %r in %d ms.", message.message_id, delay)
        try:
            # Stock Retries loses the job here when Redis is away: the enqueue fails, the error is
            # logged by the broker, and the message is acked once Redis is back.
            until_redis_answers(
                lambda: broker.enqueue(message._message, delay=delay),
                patience_s=self.outage_patience_s,
                what=f"retry of {message.message_id}",
            )
        except REDIS_ERRORS as error:
            message.options["failure_reason"] = f"its retry could not be scheduled: {error}"
            message.fail()
