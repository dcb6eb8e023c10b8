"""The queue names, defined once: jobs, workers, the Procfile and the metrics all use these."""

from __future__ import annotations

#: Every queue, in the order operators read them (heaviest first, the catch-all last).
QUEUES = ("ml_heavy", "ml_light", "exports", "notifications", "notifications_urgent", "default")
