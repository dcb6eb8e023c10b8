"""The schedule as data and its periodiq wiring (Procfile `clock`)."""
