"""Benchmarks (`make bench`): each writes a JSON result under var/bench."""
