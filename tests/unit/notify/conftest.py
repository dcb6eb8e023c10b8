"""Fixtures of the notification unit tests: the real SMTP and SMS servers."""

from tests.support.notify import provider, smtp  # noqa: F401
