"""The schedule as data, and the clock that sends each tick once however many clocks run."""
