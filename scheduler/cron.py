"""Cron evaluation on periodiq's parser, at minute resolution, in the schedule's time zone.

periodiq's `CronSpec` parses the expressions and finds the next matching minute. Two things are
added here: Sunday written `0` also matches (periodiq's `validate` compares ISO weekdays, where
Sunday is 7), and the walk over the ticks between two instants that catch-up needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pendulum
import periodiq


def parse(expression: str) -> periodiq.CronSpec:
    """A periodiq CronSpec, or ValueError saying what is wrong with the expression."""
    fields = expression.split()
    if len(fields) != 5 and not expression.strip().startswith("@"):
        raise ValueError(f"cron {expression!r}: five fields expected (m h dom mon dow)")
    try:
        spec = periodiq.cron(expression)
    except (ValueError, KeyError, IndexError) as error:
        raise ValueError(f"cron {expression!r}: {error}") from None
    for values, low, high, what in (
        (spec.minute, 0, 59, "minute"),
        (spec.hour, 0, 23, "hour"),
        (spec.dom, 1, 31, "day of month"),
        (spec.month, 1, 12, "month"),
        (spec.dow, 0, 7, "day of week"),
    ):
        outside = [value for value in values if not low <= value <= high]
        if outside or not values:
            raise ValueError(f"cron {expression!r}: {what} {outside} outside {low}-{high}")
    if 0 in spec.dow and 7 not in spec.dow:
        spec = spec.replace(dow=[*spec.dow, 7])
    return spec


def minute_of(moment: datetime, tz: str) -> pendulum.DateTime:
    """The start of `moment`'s minute, in the schedule's time zone."""
    local = pendulum.instance(moment).in_timezone(tz)
    return local.subtract(seconds=local.second, microseconds=local.microsecond)


def is_due(spec: periodiq.CronSpec, minute: pendulum.DateTime) -> bool:
    return bool(spec.validate(minute))


def next_tick(spec: periodiq.CronSpec, after: pendulum.DateTime) -> pendulum.DateTime:
    """The first matching minute strictly after `after`, in `after`'s time zone.

    Cron fields are wall-clock times, so the search runs on the naive local time: periodiq's
    search on an aware time adds absolute hours and lands on 04:00 for a 03:00 entry on the
    night clocks go forward. A wall time that does not exist that night moves forward.
    """
    tz = after.timezone
    wall = pendulum.naive(
        after.year, after.month, after.day, after.hour, after.minute, after.second
    )
    found = spec.next_valid_date(wall)
    tick = pendulum.datetime(found.year, found.month, found.day, found.hour, found.minute, tz=tz)
    if tick <= after:  # the repeated autumn hour: the wall time already passed once
        return next_tick(spec, pendulum.instance(found.add(hours=1), tz=tz))
    return tick


def ticks_between(
    spec: periodiq.CronSpec, after: pendulum.DateTime, until: pendulum.DateTime
) -> Iterator[pendulum.DateTime]:
    """Matching minutes in (after, until], oldest first."""
    tick = next_tick(spec, after)
    while tick <= until:
        yield tick
        tick = next_tick(spec, tick)
