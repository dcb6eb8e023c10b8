"""Cross-cutting behaviour of every job, one middleware class per module."""
