"""Operations: worker launcher, metrics exporter, `gaveurs` CLI, dashboards, alerts, bench."""
