"""Priority classes that hold on Redis (seed 002, "Files prioritaires").

Four classes: critical (urgent notifications, security), high (user exports, real-time
indexing), normal (maintenance, analytics), low (cleanup, optimisations). Dramatiq's `priority`
only orders the messages a worker has already prefetched, so a critical job queued behind 10,000
cleanups would wait for all of them. Here each queue has one Redis list per class and the fetch
script (lua/fetch.lua) takes from them by a smooth weighted round robin of 15 turns: 8 for
critical, 4 for high, 2 for normal, 1 for low. A turn whose class has nothing waiting goes to the
highest class that has, so the guaranteed shares under saturation are 8/15, 4/15, 2/15 and 1/15
and no class starves; an idle class costs nothing.

A job declares its default class and the range a request may choose from on its decorator:
`@job(..., priority_class="high", priority_range=("normal", "critical"))`.

The normal list is the queue's historical list (`dramatiq:<queue>`): Dramatiq's own tooling and
maintenance keep working on it. A message carries its class in its options only when it is not
normal, which also tells requeue (lua/requeue.lua) where to put it back.
"""

from __future__ import annotations

from enum import StrEnum

#: The message option carrying a non-normal class.
OPTION = "priority_class"


class PriorityClass(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


#: From the highest class to the lowest: the fetch script's fallback order, and its key order.
ORDER = (PriorityClass.CRITICAL, PriorityClass.HIGH, PriorityClass.NORMAL, PriorityClass.LOW)
#: Turns per round of 15 (lua/fetch.lua holds the same round; tests check they agree).
WEIGHTS = {
    PriorityClass.CRITICAL: 8,
    PriorityClass.HIGH: 4,
    PriorityClass.NORMAL: 2,
    PriorityClass.LOW: 1,
}
#: The seed's French names, accepted wherever a class is read from a user.
FRENCH = {
    "critique": PriorityClass.CRITICAL,
    "haute": PriorityClass.HIGH,
    "normale": PriorityClass.NORMAL,
    "basse": PriorityClass.LOW,
}


def parse(value: str | PriorityClass) -> PriorityClass:
    """A class from its English or French name; ValueError naming the choices otherwise."""
    if isinstance(value, PriorityClass):
        return value
    text = str(value).strip().lower()
    if text in FRENCH:
        return FRENCH[text]
    try:
        return PriorityClass(text)
    except ValueError:
        names = ", ".join(c.value for c in ORDER)
        raise ValueError(
            f"unknown priority class {value!r}: use one of {names} (or critique, haute, "
            "normale, basse)"
        ) from None


def rank(priority_class: PriorityClass) -> int:
    """Higher is more urgent."""
    return len(ORDER) - ORDER.index(priority_class)


def list_key(namespace: str, queue: str, priority_class: PriorityClass) -> str:
    """The Redis list of `queue` holding ready messages of this class."""
    if priority_class is PriorityClass.NORMAL:
        return f"{namespace}:{queue}"
    return f"{namespace}:{queue}.{priority_class.value}"


def list_keys(namespace: str, queue: str) -> list[str]:
    """Every ready list of `queue`, highest class first."""
    return [list_key(namespace, queue, c) for c in ORDER]


def smooth_round() -> list[PriorityClass]:
    """The 15 turns of one round, interleaved (nginx's smooth weighted round robin), so a
    critical job never waits more than one turn for its class's next turn."""
    total = sum(WEIGHTS.values())
    current = dict.fromkeys(ORDER, 0)
    turns = []
    for _ in range(total):
        for c in ORDER:
            current[c] += WEIGHTS[c]
        best = max(ORDER, key=lambda c: current[c])
        current[best] -= total
        turns.append(best)
    return turns
