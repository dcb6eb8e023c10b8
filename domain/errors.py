"""The one exception module: a base error, permanent errors (never retried) and transient ones.

The API maps these to HTTP status codes in one place (api/errors.py); the Retries middleware
retries `TransientError` and fails `PermanentError` at once, straight to the dead letters.
"""

from __future__ import annotations


class GaveursError(Exception):
    """Base class of every error this project raises on purpose."""


class PermanentError(GaveursError):
    """An error that cannot heal by retrying: the job fails at once."""


class NotFound(PermanentError):
    """The lot, site or record the job names does not exist."""


class Gone(PermanentError):
    """The thing existed but is no longer available (an export file past its expiry)."""


class InvalidInput(PermanentError):
    """The payload or the data it points at is invalid."""


class InsufficientData(PermanentError):
    """There is too little data for the job to produce a meaningful result."""


class Conflict(PermanentError):
    """The request conflicts with the current state (e.g. cancelling a finished job)."""


class TransientError(GaveursError):
    """An error that may heal by itself: the job is retried with backoff."""


class ServiceUnavailable(TransientError):
    """An external service (SMTP, SMS provider, database) did not answer."""


class BrokerUnavailable(TransientError):
    """Redis, the job broker, cannot be reached."""


class ProviderRejected(InvalidInput):
    """The SMS or mail provider refused the message for good (bad number or address)."""


class ProviderUnavailable(ServiceUnavailable):
    """The provider timed out, answered 5xx or asked us to slow down (429)."""


class CircuitOpen(ServiceUnavailable):
    """Recent calls to the provider failed: wait for the breaker to half-open, do not hammer."""
