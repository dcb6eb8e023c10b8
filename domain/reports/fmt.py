"""How figures and dates are written in the reports (French): one place, so a reader of a
PDF, or a test, finds a database value by formatting it the same way."""

from __future__ import annotations

from datetime import date


def num(value: float | None, digits: int = 1) -> str:
    """Decimal comma, a space between thousands, `digits` decimals; None is a dash."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}".replace(",", " ").replace(".", ",")


def day_fr(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else "–"
