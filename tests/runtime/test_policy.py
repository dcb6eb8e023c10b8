"""Execution policy value objects and declarations fail early with a helpful message."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from domain.errors import InvalidInput, ServiceUnavailable
from domain.platform.redact import mask_email, mask_phone, redact_payload
from runtime import RetryPolicy, job


def test_backoff_doubles_with_upward_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=5, min_backoff_ms=60_000, max_backoff_ms=300_000)
    for retries, base in enumerate([60_000, 120_000, 240_000, 300_000]):
        for _ in range(50):
            assert base <= policy.backoff_ms(retries) <= base * 1.2


def test_only_transient_errors_are_retried_within_budget() -> None:
    policy = RetryPolicy(max_retries=3)
    assert policy.should_retry(0, ServiceUnavailable("smtp down"))
    assert policy.should_retry(2, ConnectionResetError())
    assert not policy.should_retry(3, ServiceUnavailable("smtp down"))
    assert not policy.should_retry(0, InvalidInput("unknown lot"))
    assert not policy.should_retry(0, KeyError("bug"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_retries": -1}, "max_retries"),
        ({"min_backoff_ms": 10, "max_backoff_ms": 5}, "min_backoff_ms"),
        ({"retry_on": ("nope",)}, "exception classes"),
    ],
)
def test_bad_policies_fail_with_how_to_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


class Lot(BaseModel):
    lot_id: int


def test_bad_job_declarations_fail_at_import_time() -> None:
    with pytest.raises(ValueError, match="unknown queue"):
        job(queue="celery", payload=Lot)
    with pytest.raises(ValueError, match="does not have"):
        job(queue="default", payload=Lot, unique="{site}")
    with pytest.raises(ValueError, match="shorter"):
        job(queue="default", payload=Lot, time_limit_ms=1000, soft_time_limit_ms=2000)
    with pytest.raises(ValueError, match="redact"):
        job(queue="default", payload=Lot, redact=("phone",))


def test_personal_data_and_secrets_are_masked() -> None:
    assert mask_email("jean.dupont@example.org") == "j***@example.org"
    assert mask_phone("+33612345678") == "+336******78"
    payload = {
        "phone": "+33612345678",
        "api_token": "s3cret",
        "lot_id": 3472,
        "nested": {"to_email": "a@b.fr"},
    }
    masked = redact_payload(payload, extra=("phone", "to_email"))
    assert masked == {
        "phone": "+336******78",
        "api_token": "***",
        "lot_id": 3472,
        "nested": {"to_email": "a***@b.fr"},
    }


def test_plain_dramatiq_actors_keep_dramatiqs_retry_options() -> None:
    # Given our retry middleware, and plain actors as Dramatiq's own tests declare them
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from runtime.middleware.retries import PolicyRetries

    retries = PolicyRetries(default_policy=RetryPolicy(max_retries=3, min_backoff_ms=60_000))
    stub = StubBroker(middleware=[retries])
    stock = dramatiq.actor(max_retries=1, min_backoff=1000, max_backoff=5000, broker=stub)(print)
    bare = dramatiq.actor(broker=stub, actor_name="bare")(print)
    # Then Dramatiq's options give Dramatiq's behaviour (every exception retried, those bounds)
    policy = retries.policy_for(stock)
    assert (policy.max_retries, policy.min_backoff_ms, policy.max_backoff_ms) == (1, 1000, 5000)
    assert policy.should_retry(0, KeyError("any error")) and not policy.should_retry(1, KeyError())
    # And an actor without options keeps our default policy
    assert retries.policy_for(bare) == retries.default_policy
