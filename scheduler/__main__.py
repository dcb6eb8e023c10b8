"""`python -m scheduler`: the clock process. Wires SCHEDULE to periodiq and runs it."""

from __future__ import annotations

import argparse
import logging
import sys

import pendulum
import periodiq

from domain.settings import get_settings
from scheduler.schedule import SCHEDULE


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    pendulum.set_local_timezone(pendulum.timezone(get_settings().tz))

    from actors import broker

    for entry in SCHEDULE:
        if entry.enabled:
            broker.get_actor(entry.actor).options["periodic"] = periodiq.cron(entry.cron)
    args = argparse.Namespace(broker="actors", modules=[], path=[], verbose=1)
    return int(periodiq.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
