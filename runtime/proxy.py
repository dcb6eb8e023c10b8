"""The proxy of a fetched message, with the message's fields as its own attributes.

Dramatiq's MessageProxy reaches every field of its message through `__getattr__`, a Python call
each time: the ~20 middleware of a job read `message_id`, `actor_name`, `options` and
`queue_name` some thirty times a job, under the GIL the worker threads share. A Message is a
frozen dataclass, so its fields can be copied onto the proxy once: the same objects (`options`
and `kwargs` stay the message's own dicts, which middleware update in place).
"""

from __future__ import annotations

from typing import Any

from dramatiq.broker import MessageProxy
from dramatiq.message import Message


class FetchedMessage(MessageProxy):
    def __init__(self, message: Message[Any]) -> None:
        super().__init__(message)
        self.queue_name = message.queue_name
        self.actor_name = message.actor_name
        self.args = message.args
        self.kwargs = message.kwargs
        self.options = message.options
        self.message_id = message.message_id
        self.message_timestamp = message.message_timestamp
