"""`python -m scheduler`: the clock process. Safe to run several copies (one run per tick).

`--start` and `--speed` replay time faster from a given instant (rehearsing a day of the
schedule in minutes, and the multi-clock tests); without them the clock follows the wall clock.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime

import pendulum

from domain.platform.settings import get_settings

logger = logging.getLogger("gaveurs.scheduler")


def _clock_source(
    start: str | None, speed: float, tz: str, epoch: float | None
) -> Callable[[], datetime]:
    if start is None and speed == 1:
        return lambda: pendulum.now(tz)
    origin = pendulum.parse(start, tz=tz) if start else pendulum.now(tz)
    assert isinstance(origin, pendulum.DateTime)
    wall_origin = time.time() if epoch is None else epoch
    return lambda: origin.add(seconds=(time.time() - wall_origin) * speed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler", description=__doc__)
    parser.add_argument("--start", help="replay from this ISO instant (schedule time zone)")
    parser.add_argument("--speed", type=float, default=1.0, help="virtual seconds per second")
    parser.add_argument(
        "--epoch", type=float, help="wall-clock unix time matching --start (default: now)"
    )
    parser.add_argument("--poll", type=float, default=None, help="seconds between passes")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    import actors  # noqa: F401  (declares the jobs the schedule names)
    import runtime
    from runtime import REGISTRY

    broker = runtime.setup(settings).broker
    from scheduler.clock import Clock, run_forever
    from scheduler.schedule import SCHEDULE
    from scheduler.state import ScheduleState

    clock = Clock(ScheduleState(broker.client), SCHEDULE, REGISTRY, tz=settings.tz)
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        logger.info("signal %s: stopping after this pass", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    poll_s = args.poll if args.poll is not None else settings.scheduler_poll_s
    logger.info(
        "clock %s: %d entries scheduled (%s), pass every %.1f s",
        clock.identity,
        len(clock.entries),
        ", ".join(entry.name for entry in clock.entries),
        poll_s,
    )
    run_forever(
        clock,
        now=_clock_source(args.start, args.speed, settings.tz, args.epoch),
        sleep=lambda seconds: stopping.wait(seconds / max(args.speed, 1.0)),
        poll_s=poll_s,
        stop=stopping.is_set,
        # Jobs the API accepted while Redis was down: sent within a pass of Redis coming back,
        # even when the web process that accepted them has gone.
        after_pass=lambda: runtime.forward(broker, runtime.records(), runtime.engine()),
    )
    clock.state.leave(clock.identity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
